"""Scoring predicted rates exactly as nlb_tools 0.0.4's ``evaluate`` does, plus extras.

Official metric names (nlb_tools'): ``co-bps``, ``fp-bps``, ``vel R2``, ``psth R2``,
``tp corr``. Extras for synthetic data: ``rate R2`` (predicted vs true eval rates of all
neurons), ``ceiling co-bps`` (co-bps of the true rates) and ``co-bps / ceiling``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError


@dataclass(frozen=True)
class MetricInfo:
    """How to read a metric: its direction decides what `compare` calls a regression."""

    name: str
    higher_is_better: bool = True
    official: bool = True
    description: str = ""


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("co-bps", description="co-smoothing bits per spike on held-out neurons"),
        MetricInfo("vel R2", description="ridge-decoded velocity R2 from all rates"),
        MetricInfo("psth R2", description="condition-averaged rate R2 against true PSTHs"),
        MetricInfo("fp-bps", description="forward-prediction bits per spike"),
        MetricInfo("tp corr", description="per-condition corr. of neural speed with tp"),
        MetricInfo("rate R2", official=False, description="R2 of predicted vs true rates"),
        MetricInfo("ceiling co-bps", official=False, description="co-bps of the true rates"),
        MetricInfo("co-bps / ceiling", official=False, description="co-bps over the ceiling"),
    ]
}


def poisson_nll(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Total Poisson negative log-likelihood, skipping bins where ``spikes`` is NaN.

    Zero rates count as 1e-9 (as nlb_tools, without changing the caller's array).
    Shapes: any, equal; typically (trial, time, neuron).
    """
    if rates.shape != spikes.shape:
        raise UserError(f"rates shape {rates.shape} does not match spikes shape {spikes.shape}")
    keep = ~np.isnan(spikes)
    r = rates[keep] if not keep.all() else rates.ravel()
    s = spikes[keep] if not keep.all() else spikes.ravel()
    if np.isnan(r).any():
        raise UserError("NaN rate predictions found inside the scored window")
    if (r < 0).any():
        raise UserError("negative rate predictions found")
    r = np.where(r == 0, 1e-9, r)
    return float(np.sum(r - s * np.log(r) + gammaln(s + 1.0)))


def bits_per_spike(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Bits per spike of ``rates`` over a null model of each neuron's mean count.

    ``rates``, ``spikes``: (trial, time, neuron); NaN spikes are left out.
    """
    null = np.broadcast_to(
        np.nanmean(spikes, axis=tuple(range(spikes.ndim - 1)), keepdims=True), spikes.shape
    )
    nll_model = poisson_nll(rates, spikes)
    nll_null = poisson_nll(np.array(null), spikes)
    return (nll_null - nll_model) / np.nansum(spikes) / np.log(2)


def r2_pooled(pred: np.ndarray, true: np.ndarray) -> float:
    """R2 of ``pred`` against ``true`` per neuron (last axis), averaged over neurons."""
    p = pred.reshape(-1, pred.shape[-1])
    t = true.reshape(-1, true.shape[-1])
    ss_res = ((t - p) ** 2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - ss_res / ss_tot))


def evaluate(data: PhaseData, rates: Rates) -> dict[str, float]:
    """All metrics that ``data`` supports for the prediction ``rates``.

    co-bps needs held-out eval spikes (``data.target``); fp-bps needs forward spikes;
    ground-truth extras need ``data.truth``.
    """
    out: dict[str, float] = {}
    target = data.target
    if target is not None:
        out["co-bps"] = bits_per_spike(rates.eval_rates_heldout, target.eval_spikes_heldout)
        if (
            target.eval_spikes_heldin_forward is not None
            and rates.eval_rates_heldin_forward is not None
        ):
            spikes = np.concatenate(
                [target.eval_spikes_heldin_forward, target.eval_spikes_heldout_forward], axis=2
            )
            pred = np.concatenate(
                [rates.eval_rates_heldin_forward, rates.eval_rates_heldout_forward], axis=2
            )
            out["fp-bps"] = bits_per_spike(pred, spikes)
    if data.truth is not None:
        truth = data.truth
        pred_all = np.concatenate([rates.eval_rates_heldin, rates.eval_rates_heldout], axis=2)
        true_all = np.concatenate([truth.eval_rates_heldin, truth.eval_rates_heldout], axis=2)
        out["rate R2"] = r2_pooled(pred_all, true_all)
        if target is not None:
            ceiling = bits_per_spike(truth.eval_rates_heldout, target.eval_spikes_heldout)
            out["ceiling co-bps"] = ceiling
            out["co-bps / ceiling"] = out["co-bps"] / ceiling if ceiling > 0 else float("nan")
    return {k: float(v) for k, v in out.items()}
