"""NLB's test phase: train on every train-split trial, predict the test trials, score
against the released targets.

In the test phase the training set is all trials of the train split (NLB's train + val
trials, held-out neurons included) and the eval trials are the test trials, of which a model
sees the held-in spikes only (the test NWB file). The held-out test spikes, eval behaviour and
PSTHs are in NLB's released target file (:mod:`nlbsuite.testtargets`), never in the data a
model gets.

- :func:`load_test_phase` builds the test-phase :class:`~nlbsuite.data.PhaseData` from the
  dataset's NWB files (train + test), or from a val-phase tensor file (train + val trials
  with held-out neurons) plus the test NWB (:func:`test_phase_from_tensors`).
- :func:`find_target` is the target file a run scores against: ``--target FILE``, else the
  fetched released file, else None (the run then writes its submission and says how to get
  the targets); :func:`read_target` reads one dataset key's group of it, lazily.
- :func:`stand_in_target` builds a target group for tests and walkthroughs where the real
  one is not available (never a substitute for a reported number).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlbsuite.data import EvalTarget, PhaseData, phase_data_from_h5, rebin
from nlbsuite.errors import UserError, require

#: Metric a tensors-file test phase cannot score, with the reason (stored in the record).
TRAIN_ORDER_NOTE = (
    "vel R2 not scored: the train trials are the tensor file's train trials followed by its "
    "val trials, not NLB's trial order, so train rates cannot be paired with the target's "
    "train behaviour"
)
FORWARD_NOTE = (
    "fp-bps not scored: the tensor file has no forward window for its val trials, so the "
    "model was given no forward spikes to learn from"
)


def load_test_phase(
    dataset: str | None,
    bin_width_ms: int = 5,
    *,
    nwb: Sequence[str | Path] | None = None,
    tensors: str | Path | None = None,
    seed: int = 0,
) -> PhaseData:
    """The test phase of an NLB dataset: train = train + val trials, eval = test trials.

    ``nwb``: the dataset's NWB files (train and test; default: found under the data dir).
    ``tensors``: a val-phase tensor file in nlb_tools' layout; then ``nwb`` is the test NWB
    file and the training set is the file's train and val trials
    (:func:`test_phase_from_tensors`).
    """
    if tensors is not None:
        require(bool(nwb), "a tensor file needs the test NWB file (--nwb) for the test trials")
        return test_phase_from_tensors(tensors, nwb, dataset, bin_width_ms)  # type: ignore[arg-type]
    require(dataset is not None, "expected an NLB dataset name", "dataset")
    from nlbsuite.datasets import load_dataset

    return load_dataset(
        dataset,
        phase="test",
        bin_width_ms=bin_width_ms,
        nwb=[Path(p) for p in nwb] if nwb else None,
        seed=seed,
    )


def test_phase_from_tensors(
    tensors: str | Path,
    test_nwb: Sequence[str | Path],
    dataset: str | None = None,
    bin_width_ms: int = 5,
) -> PhaseData:
    """Test-phase data from a val-phase tensor file and the test NWB file.

    The val phase's train and val trials together (held-in and held-out spikes) are the test
    phase's training set; the eval trials are the test NWB's. Train trials come in the
    file's order (train, then val), not NLB's trial order, and the val trials have no
    forward window or behaviour: the result has no forward spikes or behaviour, and
    ``meta["notes"]`` says which metrics it cannot support (:data:`TRAIN_ORDER_NOTE`,
    :data:`FORWARD_NOTE`). A 5 ms file can be used at 20 ms (spikes summed over 4 bins).
    """
    val = phase_data_from_h5(tensors, dataset=dataset, phase="val")
    require(
        val.eval_spikes_heldout is not None,
        f"{tensors}: no 'eval_spikes_heldout'; the test phase trains on train + val trials "
        "with their held-out neurons (a val-phase tensor file)",
    )
    require(
        bin_width_ms % val.bin_width_ms == 0,
        f"{tensors} has {val.bin_width_ms} ms bins; expected a multiple of that",
        "bin_width_ms",
        bin_width_ms,
    )
    from nlbsuite.nlb import load_nlb

    test = load_nlb(
        val.dataset, phase="test", bin_width_ms=val.bin_width_ms, nwb_paths=[Path(p) for p in test_nwb]
    )
    require(
        test.eval_spikes_heldin.shape[1:] == val.train_spikes_heldin.shape[1:],
        f"{', '.join(map(str, test_nwb))}: test trials are {test.eval_spikes_heldin.shape[1]} "
        f"bins x {test.eval_spikes_heldin.shape[2]} held-in neurons, {tensors} has "
        f"{val.n_bins} x {val.n_heldin}; expected the same dataset",
    )
    data = PhaseData(
        dataset=val.dataset,
        bin_width_ms=val.bin_width_ms,
        phase="test",
        train_spikes_heldin=np.concatenate([val.train_spikes_heldin, val.eval_spikes_heldin]),
        train_spikes_heldout=np.concatenate([val.train_spikes_heldout, val.eval_spikes_heldout]),
        eval_spikes_heldin=np.asarray(test.eval_spikes_heldin, dtype=np.float64),
        source=f"{tensors} (train + val trials), {test.source}",
        meta={"notes": [TRAIN_ORDER_NOTE, FORWARD_NOTE], "not_scored": ["vel R2", "fp-bps"]},
        forward_bins=0,
    )
    return rebin(data, bin_width_ms // val.bin_width_ms)


test_phase_from_tensors.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# ----------------------------------------------------------------------------------------
# Targets: the released file, or one given
# ----------------------------------------------------------------------------------------


def find_target(target: str | Path | None = None) -> Path | None:
    """``target`` if given (it must exist), else the fetched and verified released targets,
    else None. A released file of the wrong size or checksum is a :class:`UserError`."""
    from nlbsuite.testtargets import FILE_NAME, default_dir, targets_path

    if target is not None:
        path = Path(target)
        require(path.is_file(), f"{path}: target file not found", "target")
        return path
    if not (default_dir() / FILE_NAME).exists():
        return None
    return targets_path()


def how_to_get_targets() -> str:
    """One line: where the released targets go and how to get them."""
    from nlbsuite.testtargets import FILE_NAME, SHA256, default_dir

    return (
        f"no test targets at {default_dir() / FILE_NAME}: run 'nlbsuite fetch test-targets' "
        f"(sha256 {SHA256}) or pass --target FILE, then score the submission"
    )


def read_target(path: str | Path, key: str) -> EvalTarget:
    """Group ``key`` (e.g. ``mc_maze_small_20``) of a target file in nlb_tools' layout, read
    alone; the released file's groups are checked against the dataset's sizes first
    (:func:`nlbsuite.testtargets.check_group`)."""
    import h5py

    from nlbsuite.nlb.cache import file_digest
    from nlbsuite.scoring.h5io import open_h5_tree
    from nlbsuite.testtargets import SHA256, check_group

    path = Path(path)
    with open_h5_tree(path, "target") as f:
        if key not in f:
            raise UserError(
                f"target {path}: no group '{key}' (groups: {', '.join(sorted(f)) or 'none'})"
            )
        group = f[key]
        require(isinstance(group, h5py.Group), f"target {path}: '{key}' is not a group")
        if file_digest(path) == SHA256:
            check_group(key, group, str(path))
        require(
            "eval_spikes_heldout" in group,
            f"target {path}: group '{key}' has no 'eval_spikes_heldout'",
        )
        known = {f.name for f in dataclasses.fields(EvalTarget)}
        body: dict[str, Any] = {k: group[k][()] for k in group if k in known}
    for k in ("eval_cond_idx", "train_cond_idx"):
        if k in body:
            body[k] = [np.asarray(ix) for ix in body[k]]
    return EvalTarget(**body)


def stand_in_target(data: PhaseData, seed: int = 0) -> dict[str, Any]:
    """A target group for ``data``'s test trials where the real one is not at hand.

    Synthetic data (true rates known): held-out eval spikes drawn from the true rates
    (Poisson, ``seed``), so co-bps means what it means on real targets. Other data: nlb_tools'
    layout at ``data``'s sizes filled with synthetic values
    (:func:`nlbsuite.synthetic_targets.make_case`): it exercises the pipeline, its scores say
    nothing about the model.
    """
    rng = np.random.default_rng(seed)
    if data.truth is not None and data.truth.eval_rates_heldout.size:
        return {"eval_spikes_heldout": rng.poisson(data.truth.eval_rates_heldout).astype(float)}
    from nlbsuite.synthetic_targets import make_case

    n_train, n_eval = len(data.train_spikes_heldin), len(data.eval_spikes_heldin)
    return make_case(data.key, n_train, n_eval, seed=seed, phase="test")[0]
