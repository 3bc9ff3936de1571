"""Compiled single-pass loops behind the scorer (numba, cached on disk after the first call).

Each kernel reads its (trial, time, neuron) arrays once, in whatever float dtype they come
(float32 submissions are never copied to float64), and accumulates in float64. They hold
no metric logic of their own: :mod:`nlbsuite.evaluation` turns their per-trial sums into
nlb_tools' numbers, and the oracle tests compare those numbers with nlb_tools' ``evaluate``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def poisson_sums(
    rates: np.ndarray,
    log_rates: np.ndarray,
    spikes: np.ndarray,
    zero_rate: float,
    log_zero_rate: float,
    model: np.ndarray,
    counts: np.ndarray,
    bins: np.ndarray,
) -> bool:
    """Add Poisson sums per (trial, neuron) over the bins whose count is not NaN.

    ``rates``, ``log_rates`` (their float64 log), ``spikes``: (trial, time, neuron). Adds
    to ``model`` the NLL without log(count!) (rate - count * log(rate)), to ``counts`` the
    counts and to ``bins`` the scored bins, each (trial, neuron) float64. A zero rate
    counts as ``zero_rate`` (nlb_tools' rule; ``log_zero_rate`` is its log). Returns
    whether a scored bin has a rate that is not positive (zero, NaN or negative: the
    caller checks which). Branch-free, so the compiler vectorises it over neurons.
    """
    n_trials, n_bins, n_neurons = spikes.shape
    bad = False
    for i in range(n_trials):
        m, c, b = model[i], counts[i], bins[i]
        for t in range(n_bins):
            s_row, r_row, l_row = spikes[i, t], rates[i, t], log_rates[i, t]
            for n in range(n_neurons):
                s = s_row[n]
                r = np.float64(r_row[n])
                log_r = l_row[n]
                scored = s == s
                bad |= scored & (not r > 0.0)
                zero = r == 0.0
                r = zero_rate if zero else r
                log_r = log_zero_rate if zero else log_r
                spiked = s > 0.0
                m[n] += (r - s * log_r if spiked else r) if scored else 0.0
                c[n] += s if spiked else 0.0
                b[n] += 1.0 if scored else 0.0
    return bad


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def neural_speed(heldin: np.ndarray, heldout: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(trial,) mean Euclidean length of the steps between consecutive kept bins.

    ``heldin``, ``heldout``: (trial, time, neuron_i) rates whose neurons together make the
    state (either may have 0 neurons); ``keep``: (trial, time) bool. Kept bins are
    differenced as if adjacent, as nlb_tools does; NaN for trials with < 2 kept bins.
    Each squared step length is summed in a vectorised order (``reassoc``), which moves the
    result by a few ulps only.
    """
    n_trials, n_bins = keep.shape
    speed = np.full(n_trials, np.nan)
    for i in range(n_trials):
        prev = -1
        total = 0.0
        steps = 0
        for t in range(n_bins):
            if not keep[i, t]:
                continue
            if prev >= 0:
                sq = 0.0
                for n in range(heldin.shape[2]):
                    d = np.float64(heldin[i, t, n]) - np.float64(heldin[i, prev, n])
                    sq += d * d
                for n in range(heldout.shape[2]):
                    d = np.float64(heldout[i, t, n]) - np.float64(heldout[i, prev, n])
                    sq += d * d
                total += math.sqrt(sq)
                steps += 1
            prev = t
        if steps > 0:
            speed[i] = total / steps
    return speed


@njit(cache=True, nogil=True)
def condition_sums(
    values: np.ndarray, trials: np.ndarray, shifts: np.ndarray, bounds: np.ndarray, ptr: np.ndarray
) -> np.ndarray:
    """(condition, time, neuron) float64 sums of jitter-shifted trials per condition.

    ``values``: C-contiguous (trial, time, neuron); condition c holds ``trials[ptr[c]:ptr[c +
    1]]``, and out[c, t] = sum of ``values[trial, t - shift]`` over them for t in
    [``bounds[c, 0]``, ``bounds[c, 1]``) (0 elsewhere); the caller guarantees every shifted
    bin lies inside the trial. Each trial's run of bins is added as one contiguous slice.
    """
    n_bins, n_neurons = values.shape[1], values.shape[2]
    n_cond = len(ptr) - 1
    flat = values.reshape(-1)
    out = np.zeros((n_cond, n_bins * n_neurons))
    for c in range(n_cond):
        lo, hi = bounds[c, 0], bounds[c, 1]
        size = (hi - lo) * n_neurons
        if size <= 0:
            continue
        row = out[c, lo * n_neurons : lo * n_neurons + size]
        for k in range(ptr[c], ptr[c + 1]):
            first = (trials[k] * n_bins + lo - shifts[k]) * n_neurons
            row += flat[first : first + size]
    return out.reshape(n_cond, n_bins, n_neurons)
