"""EvalAI submission files: write, read and validate nlb_tools' submission h5 layout.

A submission holds one group per dataset key (``mc_maze``, ``mc_maze_20``, ``area2_bump``,
...) with float32 arrays ``train_rates_heldin``, ``train_rates_heldout``,
``eval_rates_heldin``, ``eval_rates_heldout``, ``eval_rates_heldin_forward`` and
``eval_rates_heldout_forward``, all (trial, time, neuron) expected counts per bin; DMFC_RSG
has no train rates. Several datasets may share one file; nlb_tools' ``evaluate`` (and
EvalAI) read it unchanged. Writes are atomic (:mod:`nlbsuite.fileio`): a failed write never
leaves a half-written file.

:func:`write_target` writes evaluation targets in nlb_tools' ``eval_target.h5`` layout (for
local scoring of val-phase or synthetic data with ``nlbsuite score``).

:func:`validate_submission` and :func:`score_file` are the library forms of ``nlbsuite
validate`` and ``nlbsuite score``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from nlbsuite.catalog import SUBMISSION_KEYS, DatasetKey
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError
from nlbsuite.fileio import atomic_path
from nlbsuite.scoring.evaluator import Evaluator
from nlbsuite.scoring.h5io import open_h5_tree
from nlbsuite.scoring.rules import Problem, tree_problems

if TYPE_CHECKING:  # pragma: no cover
    from nlbsuite.scoring.scores import Scores


def submission_arrays(
    rates: Rates | Mapping[str, np.ndarray], dataset_key: str
) -> dict[str, np.ndarray]:
    """The arrays of one submission group: float32 copies (the input is not changed), the
    forward windows when present, and no train rates where they are not scored (DMFC_RSG)."""
    card = DatasetKey.parse(dataset_key).card
    arrays = rates.arrays() if isinstance(rates, Rates) else dict(rates)
    out = {}
    for name in SUBMISSION_KEYS:
        value = arrays.get(name)
        if value is None or (not card.scores_train_rates and name.startswith("train_")):
            continue
        out[name] = np.asarray(value, dtype=np.float32)
    return out


def _atomic_h5(path: Path, fill: Any, merge: bool, replaced: set[str]) -> Path:
    """Write an h5 file atomically: ``fill(h5py.File)`` writes into a temp file next to
    ``path``, which then replaces ``path``. With ``merge``, the groups of an existing
    ``path`` other than ``replaced`` are copied into the new file first."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as dst:
        if merge and path.exists():
            with open_h5_tree(path, "existing file") as src:
                for key in src:
                    if key not in replaced:
                        src.copy(src[key], dst, name=key)
        fill(dst)
    return path


def write_submission(
    path: str | Path,
    groups: Mapping[str, Rates | Mapping[str, np.ndarray]],
    *,
    merge: bool = False,
    compression: str | None = "gzip",
) -> Path:
    """Write ``{dataset_key: rates}`` as an EvalAI submission file; returns the path.

    ``merge``: keep the other dataset groups of an existing file (several datasets in one
    file); otherwise the file is replaced. ``compression``: h5py filter (nlb_tools uses gzip).
    """
    for key in groups:
        DatasetKey.parse(key)
    arrays = {key: submission_arrays(rates, key) for key, rates in groups.items()}

    def fill(f: h5py.File) -> None:
        for key, group in arrays.items():
            g = f.create_group(key)
            for name, value in group.items():
                g.create_dataset(name, data=value, compression=compression)

    return _atomic_h5(Path(path), fill, merge, set(arrays))


def read_submission(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``{dataset_key: {array name: array}}`` of a submission file."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with open_h5_tree(path, "submission") as f:
        for key in f:
            group = f[key]
            if not isinstance(group, h5py.Group):
                raise UserError(f"submission {path}: top-level item '{key}' is not a group")
            out[key] = {
                name: group[name][()] for name in group if isinstance(group[name], h5py.Dataset)
            }
    return out


def target_group(data: PhaseData) -> dict[str, Any]:
    """nlb_tools' eval-target group of ``data`` (its :class:`EvalTarget`, plus the train
    behaviour when the target has eval behaviour but no train behaviour)."""
    if data.target is None:
        raise UserError(f"{data.key} ({data.phase}): no evaluation target to write")
    group = data.target.arrays()
    if (
        "eval_behavior" in group
        and "train_behavior" not in group
        and data.train_behavior is not None
    ):
        group["train_behavior"] = data.train_behavior
    return group


def write_target(
    path: str | Path, groups: Mapping[str, Mapping[str, Any]], *, merge: bool = False
) -> Path:
    """Write ``{dataset_key: target group}`` in nlb_tools' ``eval_target.h5`` layout.

    Condition index lists (``eval_cond_idx``, ``train_cond_idx``) become variable-length
    int32 datasets, as nlb_tools writes them; other arrays keep their dtype.
    """
    for key in groups:
        DatasetKey.parse(key)

    def fill(f: h5py.File) -> None:
        for key, group in groups.items():
            g = f.create_group(key)
            for name, value in group.items():
                if name.endswith("_cond_idx"):
                    items = [np.asarray(ix, dtype=np.int32).ravel() for ix in value]
                    ds = g.create_dataset(name, (len(items),), dtype=h5py.vlen_dtype(np.int32))
                    for i, ix in enumerate(items):
                        ds[i] = ix
                else:
                    g.create_dataset(name, data=np.asarray(value))

    return _atomic_h5(Path(path), fill, merge, set(groups))


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


def validate_submission(
    source: str | Path | Mapping[str, Any], target: str | Path | Mapping[str, Any] | None = None
) -> list[Problem]:
    """Every problem of a submission file (or dict) under the rules scoring enforces
    (:func:`~nlbsuite.scoring.rules.tree_problems`, :meth:`Evaluator.problems`): keys, shapes
    (against the NLB sizes or, with ``target``, the eval target's), dtype, NaN / inf,
    negative and all-zero rates. No error means ``nlbsuite score`` and EvalAI score it."""
    where = str(source) if not isinstance(source, Mapping) else "submission"
    problems: list[Problem] = []
    try:
        with ExitStack() as stack:
            tree = stack.enter_context(open_h5_tree(source, "submission"))
            tgt = None if target is None else stack.enter_context(open_h5_tree(target, "target"))
            keys, found = tree_problems(tree, tgt)
            problems += [replace(p, where=p.where or where) for p in found]
            for key in keys:
                tgt_group = tgt[key] if tgt is not None and key in tgt else None
                _, found = Evaluator(key).problems(tree[key], tgt_group)
                problems += [replace(p, where=p.where or f"target '{key}'") for p in found]
    except UserError as exc:
        message = str(exc).removeprefix(f"submission {where}: ").removeprefix("target ")
        return [*problems, Problem("error", where, message)]
    return problems


def catalog_problems(source: str | Path, phases: Mapping[str, str]) -> list[Problem]:
    """Trial-count errors of a submission's test-phase groups (``phases``: dataset key ->
    phase) against the counts the test phase fixes (the MC_Maze scaling split:
    :func:`nlbsuite.testtargets.expected_sizes`); other sizes are :func:`validate_submission`'s."""
    from nlbsuite.testtargets import expected_sizes

    problems: list[Problem] = []
    with open_h5_tree(source, "submission") as tree:
        for key, phase in phases.items():
            dataset_key = DatasetKey.parse(key)
            dataset, expected = dataset_key.dataset, expected_sizes(dataset_key.card)
            if phase != "test" or key not in tree:
                continue
            for name in tree[key]:
                n = expected.n_train if name.startswith("train_") else expected.n_eval
                got = tree[key][name].shape[0]
                if n is not None and got != n:
                    problems.append(
                        Problem(
                            "error",
                            f"{key}/{name}",
                            f"{got} trials; the {dataset} test phase has {n}",
                        )
                    )
    return problems


@dataclass
class ScoreReport:
    """Scores of a submission file per dataset key, with what was left out and why."""

    scores: dict[str, Scores]
    skipped: list[str]  # submission keys the target file has no group for
    notes: list[str]  # unexpected items of the released target groups read
    target: str  # the target file scored against


def score_file(
    submission: str | Path,
    target: str | Path | None = None,
    *,
    n_boot: int = 0,
    seed: int = 0,
) -> ScoreReport:
    """Score a submission file exactly as nlb_tools' ``evaluate`` (``nlbsuite score``).

    ``target``: an eval-target file; default NLB's released test targets (fetched with
    ``nlbsuite fetch test-targets``), of which only the submission's groups are read and
    each is checked against the dataset's sizes. ``n_boot`` bootstrap resamples of the eval
    trials give 95% intervals (``Scores.ci``).
    """
    from nlbsuite.scoring import score_by_key

    skipped: list[str] = []
    notes: list[str] = []
    with ExitStack() as stack:
        tgt: Any = target
        if target is None:
            from nlbsuite.testtargets import TestTargets

            with open_h5_tree(submission, "submission") as tree:
                keys = list(tree)
            released = stack.enter_context(TestTargets())
            tgt = released.groups(keys)
            notes = released.notes
            target = released.path
        scores = score_by_key(tgt, submission, n_boot=n_boot, seed=seed, skipped=skipped)
    return ScoreReport(scores, skipped, notes, str(target))
