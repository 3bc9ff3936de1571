"""The numbers each report figure plots, as plain numpy (no matplotlib): tested on their own.

Arrays are (trial, time, neuron) as everywhere in nlbsuite; ``saved`` is a run's
:func:`nlbsuite.predictions.load_predictions` dict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlbsuite.scoring.bootstrap import bootstrap_weights
from nlbsuite.scoring.metrics import bits_per_spike_per_neuron
from nlbsuite.scoring.stats import BitsPerSpike


def condition_means(saved: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted condition means aligned as the scorer's ``psth R2`` aligns them, and the
    conditions they belong to: ((kept condition, time, neuron), (kept condition,)).

    Conditions without eval trials are left out; a trial with jitter j shows its bin t - j
    at bin t (bins it lacks, and bins where the true PSTH is NaN, are NaN).
    """
    rates, psth = saved["eval_rates"].astype(np.float64), saved["psth"]
    ptr, trials, jitter = saved["cond_ptr"], saved["cond_trials"], saved["eval_jitter"]
    n_bins = rates.shape[1]
    kept = [c for c in range(len(ptr) - 1) if ptr[c + 1] > ptr[c]]
    out = np.full((len(kept), n_bins, rates.shape[2]), np.nan)
    t = np.arange(n_bins)
    for k, c in enumerate(kept):
        acc = np.zeros((n_bins, rates.shape[2]))
        for trial in trials[ptr[c] : ptr[c + 1]]:
            src = t - int(jitter[trial])
            ok = (src >= 0) & (src < n_bins)
            shifted = np.full((n_bins, rates.shape[2]), np.nan)
            shifted[ok] = rates[trial, src[ok]]
            acc += shifted
        out[k] = acc / (ptr[c + 1] - ptr[c])
        out[k][np.isnan(psth[c, :, 0])] = np.nan
    return out, np.asarray(kept, dtype=np.intp)


def psth_panels(
    saved: dict[str, np.ndarray], n_conditions: int = 4, n_neurons: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the PSTH figure shows: the first ``n_conditions`` conditions with eval trials and
    the ``n_neurons`` held-out neurons with the highest true mean rate.

    Returns (conditions (c,), neurons (n,), predicted (c, time, n), true (c, time, n)).
    """
    means, kept = condition_means(saved)
    n_heldin = int(saved["n_heldin"])
    psth = saved["psth"]
    heldout_rate = np.nanmean(psth[kept][:, :, n_heldin:], axis=(0, 1))
    neurons = n_heldin + np.argsort(-np.nan_to_num(heldout_rate, nan=-np.inf))[:n_neurons]
    conds = kept[:n_conditions]
    pred = means[:n_conditions][:, :, neurons]
    return conds, neurons, pred, psth[conds][:, :, neurons]


def per_neuron_co_bps(saved: dict[str, np.ndarray]) -> np.ndarray:
    """co-bps of each held-out neuron on the eval trials, (held-out neuron,): the scorer's
    :func:`~nlbsuite.scoring.metrics.bits_per_spike_per_neuron`."""
    n = int(saved["n_heldin"])
    return bits_per_spike_per_neuron(saved["eval_rates"][..., n:], saved["eval_spikes"][..., n:])


@dataclass
class Delta:
    """A paired difference b - a with its bootstrap interval over eval trials."""

    value: float
    lo: float
    hi: float


def paired_co_bps_delta(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], n_boot: int = 1000, seed: int = 0
) -> Delta:
    """co-bps of run ``b`` minus run ``a`` on the same eval trials, with a 95% percentile
    interval from ``n_boot`` resamples of the eval trials (the same resample for both)."""
    n = int(a["n_heldin"])
    spikes = a["eval_spikes"][..., n:]
    stats = [BitsPerSpike.build(s["eval_rates"][..., n:], spikes, "rates") for s in (a, b)]
    ones = np.ones((1, len(spikes)))
    value = float(stats[1].score(ones)[0] - stats[0].score(ones)[0])
    w = bootstrap_weights(len(spikes), n_boot, seed)
    reps = stats[1].score(w) - stats[0].score(w)
    lo, hi = np.nanpercentile(reps, [2.5, 97.5])
    return Delta(value, float(lo), float(hi))


def rate_scatter(
    saved: dict[str, np.ndarray], max_points: int = 4000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) held-out eval rates, a seeded random subset of at most
    ``max_points`` (trial, bin, neuron) entries, for the synthetic-data scatter."""
    n = int(saved["n_heldin"])
    true = saved["true_rates"][..., n:].ravel()
    pred = saved["eval_rates"][..., n:].ravel()
    if true.size > max_points:
        pick = np.random.default_rng(seed).choice(true.size, max_points, replace=False)
        true, pred = true[pick], pred[pick]
    return true, pred


def latent_projection(latents: np.ndarray) -> np.ndarray:
    """(trial, time, 2): latents projected on their first two principal components (the
    latents themselves when they have fewer than three dimensions)."""
    x = np.asarray(latents, dtype=np.float64)
    if x.shape[2] < 3:
        return x if x.shape[2] == 2 else np.concatenate([x, np.zeros_like(x)], axis=2)
    flat = x.reshape(-1, x.shape[2])
    centred = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T).reshape(*x.shape[:2], 2)


def per_neuron_ceiling(saved: dict[str, np.ndarray]) -> np.ndarray:
    """co-bps of each held-out neuron under the true rates (synthetic data), (neuron,)."""
    n = int(saved["n_heldin"])
    return bits_per_spike_per_neuron(saved["true_rates"][..., n:], saved["eval_spikes"][..., n:])
