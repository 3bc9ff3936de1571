"""Scores of one dataset key from checked arrays: which metrics apply, official values and
bootstrap intervals (:class:`Scores`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlbsuite.scoring.bootstrap import intervals
from nlbsuite.scoring.decoding import velocity_stats
from nlbsuite.scoring.stats import R2, BitsPerSpike, Psth, TpCorr


@dataclass
class Scores:
    """Scores of one dataset key.

    ``metrics``: official metrics under nlb_tools' names (plus extras on synthetic data);
    ``ci``: bootstrap confidence interval per metric (empty without bootstrap): the
    estimate +- z * the standard deviation of the metric over ``n_boot`` resamples of the
    eval trials (Efron's standard interval; a percentile interval would sit below the
    estimate for psth R2, whose resampled PSTHs average fewer distinct trials);
    ``per_neuron_bps``: co-bps of each held-out neuron, (heldout neuron,).
    """

    key: str
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_neuron_bps: np.ndarray | None = None
    n_boot: int = 0
    confidence: float = 0.95

    def flat(self) -> dict[str, float]:
        """Metrics plus ``"<metric> ci_lo"`` / ``"<metric> ci_hi"`` for each interval."""
        out = dict(self.metrics)
        for name, (lo, hi) in self.ci.items():
            out[f"{name} ci_lo"], out[f"{name} ci_hi"] = lo, hi
        return out


def score_arrays(
    key: str,
    sub: dict[str, np.ndarray],
    tgt: dict[str, Any],
    *,
    behavior_metric: str = "vel R2",
    truth: dict[str, np.ndarray] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> Scores:
    """Score checked float arrays of one dataset key (see :meth:`Evaluator.check`).

    ``behavior_metric``: how behaviour is scored (the card's: ``vel R2`` or ``tp corr``);
    every other metric is scored when the target and ``truth`` support it.
    """
    spikes = tgt["eval_spikes_heldout"]
    n_eval = len(spikes)
    scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    # Kept in their dtype (float32 in files): each metric accumulates in float64 itself.
    eval_parts = [sub[k] for k in ("eval_rates_heldin", "eval_rates_heldout")]

    co = BitsPerSpike.build(eval_parts[1], spikes, f"{key}/eval_rates_heldout")
    scorers["co-bps"] = co.score
    if behavior_metric == "tp corr":
        if "eval_behavior" in tgt:
            scorers["tp corr"] = TpCorr.build(spikes, eval_parts, tgt["eval_behavior"]).score
    elif "train_behavior" in tgt and "eval_behavior" in tgt:
        n_train = len(tgt["train_behavior"])
        train_mask = tgt.get("train_decode_mask", np.ones((n_train, 1), dtype=bool))
        eval_mask = tgt.get("eval_decode_mask", np.ones((n_eval, 1), dtype=bool))
        vel = velocity_stats(
            [sub["train_rates_heldin"], sub["train_rates_heldout"]],
            tgt["train_behavior"],
            train_mask,
            eval_parts,
            tgt["eval_behavior"],
            eval_mask,
            key,
        )
        scorers["vel R2"] = lambda w: np.mean([s.score(w) for s in vel], axis=0)
    if "psth" in tgt:
        scorers["psth R2"] = Psth.build(
            tgt["psth"],
            eval_parts,
            tgt["eval_cond_idx"],
            tgt.get("eval_jitter"),
            f"{key}/eval_rates",
        ).score
    if "eval_rates_heldin_forward" in sub and "eval_spikes_heldin_forward" in tgt:
        fwd = BitsPerSpike.concat(
            [
                BitsPerSpike.build(
                    sub[f"eval_rates_{part}_forward"],
                    tgt[f"eval_spikes_{part}_forward"],
                    f"{key}/eval_rates_{part}_forward",
                )
                for part in ("heldin", "heldout")
            ]
        )
        scorers["fp-bps"] = fwd.score
    if truth is not None:
        pred_all = np.concatenate(eval_parts, axis=2, dtype=np.float64)
        true_all = np.concatenate(
            [truth["eval_rates_heldin"], truth["eval_rates_heldout"]], axis=2, dtype=np.float64
        )
        rows = pred_all.reshape(-1, pred_all.shape[2])
        row_trial = np.repeat(np.arange(n_eval), pred_all.shape[1])
        rate = R2.build(true_all.reshape(rows.shape), rows, row_trial, n_eval)
        scorers["rate R2"] = rate.score
        ceiling = BitsPerSpike.build(truth["eval_rates_heldout"], spikes, "true rates")
        scorers["ceiling co-bps"] = ceiling.score

        def ratio(w: np.ndarray) -> np.ndarray:
            c = ceiling.score(w)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(c > 0, co.score(w) / c, np.nan)

        scorers["co-bps / ceiling"] = ratio

    ones = np.ones((1, n_eval))
    metrics = {name: float(f(ones)[0]) for name, f in scorers.items()}
    ci = intervals(scorers, metrics, n_eval, n_boot, seed, confidence) if n_boot > 0 else {}
    return Scores(key, metrics, ci, co.per_neuron(ones)[0], n_boot, confidence)

