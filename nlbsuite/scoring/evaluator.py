"""The official scorer of one dataset key (:class:`Evaluator`), and :func:`score_phase` /
:func:`evaluate`, the runner's path from a :class:`~nlbsuite.data.PhaseData` and
:class:`~nlbsuite.data.Rates` to scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from nlbsuite.catalog import SUBMISSION_KEYS, DatasetKey, find_card
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError, require
from nlbsuite.scoring.h5io import float_array, item_shape, read_item
from nlbsuite.scoring.rules import (
    FORWARD_KEYS,
    H5_ERRORS,
    TRAIN_KEYS,
    Problem,
    damaged,
    first_error,
    group_problems,
)
from nlbsuite.scoring.scores import Scores, score_arrays


class Evaluator:
    """Official scorer of one NLB dataset key (``mc_maze``, ``mc_maze_20``, ``dmfc_rsg``, ...).

    Like OGB's evaluators it states what it expects (:attr:`expected_input_format`) and
    checks inputs before scoring, with one-line errors that name the key and the expected
    shape. ``eval(submission, target)`` takes the key's submission group (the six
    ``*_rates_*`` arrays) and target group (nlb_tools' ``eval_target.h5`` content for the
    key), as dicts or h5py groups, and returns :class:`Scores` whose official metrics equal
    nlb_tools' ``evaluate`` for that key.
    """

    def __init__(self, dataset_key: str, dataset: str | None = None):
        """``dataset``: the dataset name, for keys of data outside the catalogue (then
        ``dataset_key`` is not checked). What is scored comes from the dataset's card."""
        self.key = dataset_key
        if dataset is None:
            self.dataset, self.bin_width_ms = DatasetKey.parse(dataset_key)
        else:
            self.dataset, self.bin_width_ms = dataset, 5
        self.card = find_card(self.dataset)

    @property
    def needs_train_rates(self) -> bool:
        """Whether train rates are scored (not for DMFC_RSG: no velocity decoding)."""
        return self.card.scores_train_rates

    @property
    def behavior_metric(self) -> str:
        """How a target's behaviour is scored: ``tp corr`` where the card says so, else
        ``vel R2`` (ridge decoding)."""
        return "tp corr" if self.card.behavior_metric == "tp corr" else "vel R2"

    @property
    def expected_input_format(self) -> str:
        shape = self.card.shape
        if shape is not None:
            bins, fwd = shape.bins(self.bin_width_ms)
            nin, nout = shape.n_heldin, shape.n_heldout
        else:
            bins, fwd, nin, nout = "n_bins", "n_forward", "n_heldin", "n_heldout"
        lines = [
            f"==== Expected input format of Evaluator('{self.key}')",
            f"submission group '{self.key}' with float arrays (float32 in files), "
            "rates as expected spike counts per bin, >= 0:",
        ]
        if self.needs_train_rates:
            lines += [
                f"  train_rates_heldin   (n_train, {bins}, {nin})",
                f"  train_rates_heldout  (n_train, {bins}, {nout})",
            ]
        lines += [
            f"  eval_rates_heldin    (n_eval, {bins}, {nin})",
            f"  eval_rates_heldout   (n_eval, {bins}, {nout})",
            f"  eval_rates_heldin_forward   (n_eval, {fwd}, {nin})   [for fp-bps]",
            f"  eval_rates_heldout_forward  (n_eval, {fwd}, {nout})   [for fp-bps]",
            f"target group '{self.key}' in nlb_tools' eval_target.h5 layout "
            "(eval_spikes_heldout, train_behavior, eval_behavior, ...); n_train and "
            "n_eval come from it.",
        ]
        return "\n".join(lines)

    @property
    def expected_output_format(self) -> str:
        names = ["co-bps", self.behavior_metric, "psth R2", "fp-bps"]
        return (
            f"==== Expected output format of Evaluator('{self.key}')\n"
            f"Scores.metrics: {{{', '.join(repr(n) for n in names)}}} -> float "
            "(those the target supports)"
        )

    def expected_shapes(self, target: Any) -> dict[str, tuple[int, ...]]:
        """Exact submission shapes implied by ``target`` (and the NLB sizes)."""
        spikes = item_shape(target, "eval_spikes_heldout")
        require(spikes is not None, f"target '{self.key}': missing key 'eval_spikes_heldout'")
        require(
            len(spikes) == 3,
            f"target '{self.key}/eval_spikes_heldout': expected a (trial, time, neuron) array, "
            f"got shape {spikes}",
        )
        n_eval, n_bins, n_out = spikes
        n_in = n_fwd = None
        fwd, psth = item_shape(target, "eval_spikes_heldin_forward"), item_shape(target, "psth")
        if fwd is not None and len(fwd) == 3:
            n_fwd, n_in = fwd[1], fwd[2]
        elif psth is not None and len(psth) == 3:
            n_in = psth[2] - n_out
        elif self.card.shape is not None:
            n_in = self.card.shape.n_heldin
        shapes: dict[str, tuple[int, ...]] = {}
        beh = item_shape(target, "train_behavior")
        if self.needs_train_rates and beh and "eval_behavior" in target:
            shapes["train_rates_heldout"] = (beh[0], n_bins, n_out)
            if n_in is not None:
                shapes["train_rates_heldin"] = (beh[0], n_bins, n_in)
        shapes["eval_rates_heldout"] = (n_eval, n_bins, n_out)
        if n_in is not None:
            shapes["eval_rates_heldin"] = (n_eval, n_bins, n_in)
        if n_fwd is not None:
            shapes["eval_rates_heldin_forward"] = (n_eval, n_fwd, n_in)
            shapes["eval_rates_heldout_forward"] = (n_eval, n_fwd, n_out)
        return shapes

    def _shapes(self, target: Any | None) -> dict[str, tuple[int | None, ...]]:
        """Expected shapes per array: from ``target`` when given, else from the NLB sizes
        with any trial count (None); empty for data of no fixed size."""
        if target is not None:
            return dict(self.expected_shapes(target))
        shape = self.card.shape
        if shape is None:
            return {}
        bins, fwd = shape.bins(self.bin_width_ms)
        return {
            name: (
                None,
                fwd if name in FORWARD_KEYS else bins,
                shape.n_heldin if name.endswith(("heldin", "heldin_forward")) else shape.n_heldout,
            )
            for name in SUBMISSION_KEYS
        }

    def problems(
        self, submission: Any, target: Any | None = None, *, warnings: bool = True
    ) -> tuple[dict[str, np.ndarray], list[Problem]]:
        """The rule set of one submission group (dict or h5py group): the arrays that passed
        (float; integers as float64) and every problem found.

        Errors: a missing required array (train rates are required unless the dataset is
        DMFC_RSG or ``target`` has no behaviour to decode), one forward array without the
        other, an item that is no numeric array, a shape other than (trial, time, neuron) of
        the expected sizes (``target``'s, else the NLB sizes), NaN / infinite / negative /
        all-zero rates, arrays that disagree in trials, bins or neurons. Warnings (only with
        ``warnings``): dtype not float32, no forward arrays, silent neurons, unknown keys,
        DMFC_RSG train rates (ignored). A damaged h5 group is one error.
        """
        try:
            return self._problems(submission, target, warnings)
        except H5_ERRORS as exc:
            return {}, [damaged(submission, self.key, exc)]

    def _problems(
        self, submission: Any, target: Any | None, warnings: bool
    ) -> tuple[dict[str, np.ndarray], list[Problem]]:
        try:
            shapes = self._shapes(target)
        except UserError as exc:
            shapes, problems = self._shapes(None), [Problem("error", "", str(exc))]
        else:
            problems = []
        decodes = target is None or ("train_behavior" in target and "eval_behavior" in target)
        required = ["eval_rates_heldin", "eval_rates_heldout"]
        if self.needs_train_rates and decodes:
            required = ["train_rates_heldin", "train_rates_heldout", *required]
        ignored = (
            ()
            if self.needs_train_rates
            else (f"{self.card.title} is scored without train rates", TRAIN_KEYS)
        )
        arrays, found = group_problems(
            self.key, submission, shapes, required, ignored=ignored, warnings=warnings
        )
        return arrays, problems + found

    def check(
        self, submission: Any, target: Any, *, source: str = "submission"
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Read and check both groups; returns (submission arrays, target arrays).

        Raises :class:`UserError` for a bad target group, or for the first error of
        :meth:`problems` as one line ``{source}: {key}/{array}: {what is wrong}``.
        """
        shapes = self.expected_shapes(target)
        sub, problems = self.problems(submission, target, warnings=False)
        first_error(problems, source)

        tgt: dict[str, Any] = {}
        n_eval, n_bins, _ = shapes["eval_rates_heldout"]
        tgt["eval_spikes_heldout"] = float_array(
            read_item(target, "eval_spikes_heldout"),
            f"target '{self.key}/eval_spikes_heldout'",
            "(trial, time, neuron)",
            3,
        )
        for name in ("eval_spikes_heldin_forward", "eval_spikes_heldout_forward", "psth"):
            value = read_item(target, name)
            if value is not None:
                tgt[name] = float_array(value, f"target '{self.key}/{name}'", "3-d", 3)
        for name in ("train_behavior", "eval_behavior"):
            value = read_item(target, name)
            if value is not None:
                tgt[name] = float_array(
                    value, f"target '{self.key}/{name}'", "2-d or 3-d", (2, 3)
                ).astype(np.float64)
        if "eval_behavior" in tgt:
            require(
                len(tgt["eval_behavior"]) == n_eval,
                f"target '{self.key}/eval_behavior': {len(tgt['eval_behavior'])} trials, "
                f"expected {n_eval}",
            )
        if "eval_spikes_heldin_forward" in tgt:
            require(
                "eval_spikes_heldout_forward" in tgt,
                f"target '{self.key}': missing key 'eval_spikes_heldout_forward'",
            )
        if self.behavior_metric == "vel R2" and "train_behavior" in tgt and "eval_behavior" in tgt:
            for split, n in (("train", len(tgt["train_behavior"])), ("eval", n_eval)):
                mask = read_item(target, f"{split}_decode_mask")
                if mask is None:
                    continue
                mask = np.asarray(mask)
                require(
                    mask.ndim == 2 and len(mask) == n and mask.dtype.kind in "biu",
                    f"target '{self.key}/{split}_decode_mask': expected a boolean "
                    f"({n}, n_masks) array, got dtype {mask.dtype} shape {mask.shape}",
                )
                tgt[f"{split}_decode_mask"] = mask.astype(bool)
            if "train_decode_mask" in tgt or "eval_decode_mask" in tgt:
                require(
                    "train_decode_mask" in tgt
                    and "eval_decode_mask" in tgt
                    and tgt["train_decode_mask"].shape[1] == tgt["eval_decode_mask"].shape[1],
                    f"target '{self.key}': train_decode_mask and eval_decode_mask must both "
                    "be present with the same number of masks",
                )
            n_dims = tgt["train_behavior"].shape[-1]
            for split, n in (("train", len(tgt["train_behavior"])), ("eval", n_eval)):
                beh = tgt[f"{split}_behavior"]
                require(
                    beh.shape == (n, n_bins, n_dims),
                    f"target '{self.key}/{split}_behavior': expected shape ({n}, {n_bins}, "
                    f"{n_dims}) (trial, bin, behaviour dim), got {beh.shape}",
                )
        if "psth" in tgt:
            cond = read_item(target, "eval_cond_idx")
            require(cond is not None, f"target '{self.key}': 'psth' without 'eval_cond_idx'")
            tgt["eval_cond_idx"] = [np.asarray(c).ravel() for c in cond]
            jitter = read_item(target, "eval_jitter")
            if jitter is not None:
                tgt["eval_jitter"] = np.asarray(jitter).astype(np.intp).ravel()
        return sub, tgt

    def eval(
        self,
        submission: Any,
        target: Any,
        *,
        n_boot: int = 0,
        seed: int = 0,
        confidence: float = 0.95,
        source: str = "submission",
    ) -> Scores:
        """Score one key's submission group against its target group (dicts or h5 groups).

        ``n_boot`` > 0 adds bootstrap intervals (eval trials resampled with replacement,
        seeded by ``seed``) at level ``confidence``; see :class:`Scores`. ``source`` starts
        error messages (e.g. ``submission path/to/file.h5``).
        """
        sub, tgt = self.check(submission, target, source=source)
        return score_arrays(
            self.key,
            sub,
            tgt,
            behavior_metric=self.behavior_metric,
            n_boot=n_boot,
            seed=seed,
            confidence=confidence,
        )



def score_phase(
    data: PhaseData, rates: Rates, *, n_boot: int = 0, seed: int = 0, confidence: float = 0.95
) -> Scores:
    """Scores of a model's ``rates`` on ``data``: official metrics the data supports, plus
    ground-truth extras on synthetic data, optionally with bootstrap intervals."""
    require(
        data.target is not None,
        f"{data.key} ({data.phase}): no evaluation target (held-out eval spikes) to score against",
    )
    tgt = data.target.arrays()
    if "eval_behavior" in tgt and "train_behavior" not in tgt and data.train_behavior is not None:
        tgt["train_behavior"] = data.train_behavior
    ev = Evaluator(data.key, dataset=data.dataset)
    ev.bin_width_ms = data.bin_width_ms
    sub_arrays, tgt_arrays = ev.check(rates.arrays(), tgt)
    truth = None
    if data.truth is not None:
        truth = {
            "eval_rates_heldin": data.truth.eval_rates_heldin,
            "eval_rates_heldout": data.truth.eval_rates_heldout,
        }
    return score_arrays(
        data.key,
        sub_arrays,
        tgt_arrays,
        behavior_metric=ev.behavior_metric,
        truth=truth,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )


def evaluate(data: PhaseData, rates: Rates, *, n_boot: int = 0, seed: int = 0) -> dict[str, float]:
    """All metrics ``data`` supports for the prediction ``rates`` (flat dict of floats).

    co-bps needs held-out eval spikes (``data.target``); fp-bps forward spikes; vel R2
    train and eval behaviour; psth R2 PSTHs; ground-truth extras ``data.truth``. With
    ``n_boot`` > 0, ``"<metric> ci_lo"`` / ``"<metric> ci_hi"`` bootstrap bounds are added.
    """
    return score_phase(data, rates, n_boot=n_boot, seed=seed).flat()
