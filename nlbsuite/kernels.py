"""Compiled single-pass loops behind the scorer (numba, cached on disk after the first call).

Each kernel reads its (trial, time, neuron) arrays once, in whatever float dtype they come
(float32 submissions are never copied: each value is cast to float64 before any arithmetic,
as nlb_tools casts whole arrays), and accumulates in float64. Trials (or conditions) run
in parallel on all cores (``NUMBA_NUM_THREADS`` caps them); every output element is written
by one iteration in a fixed order, so results do not depend on the number of threads.
They hold no metric logic: :mod:`nlbsuite.evaluation` turns their sums into nlb_tools'
numbers, and the oracle tests compare those with nlb_tools' ``evaluate``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True)
def poisson_sums(
    rates: np.ndarray,
    log_rates: np.ndarray,
    spikes: np.ndarray,
    zero_rate: float,
    log_zero_rate: float,
    model: np.ndarray,
    counts: np.ndarray,
    bins: np.ndarray,
) -> int:
    """Add Poisson sums per (trial, neuron) over the bins whose count is not NaN.

    ``rates``, ``log_rates`` (their float64 log), ``spikes``: (trial, time, neuron). Adds
    to ``model`` the NLL without log(count!) (rate - count * log(rate)), to ``counts`` the
    counts and to ``bins`` the scored bins, each (trial, neuron) float64. A zero rate
    counts as ``zero_rate`` (nlb_tools' rule; ``log_zero_rate`` is its log). Returns the
    number of scored bins whose rate is not positive (zero, NaN or negative: the caller
    checks which). Branch-free, so the compiler vectorises it over neurons.
    """
    n_trials, n_bins, n_neurons = spikes.shape
    n_bad = 0
    for i in prange(n_trials):
        m, c, b = model[i], counts[i], bins[i]
        for t in range(n_bins):
            s_row, r_row, l_row = spikes[i, t], rates[i, t], log_rates[i, t]
            for n in range(n_neurons):
                s = s_row[n]
                r = np.float64(r_row[n])
                log_r = l_row[n]
                scored = s == s
                n_bad += 1 if scored & (not r > 0.0) else 0
                zero = r == 0.0
                r = zero_rate if zero else r
                log_r = log_zero_rate if zero else log_r
                spiked = s > 0.0
                m[n] += (r - s * log_r if spiked else r) if scored else 0.0
                c[n] += s if spiked else 0.0
                b[n] += 1.0 if scored else 0.0
    return n_bad


@njit(cache=True, nogil=True, parallel=True, fastmath={"reassoc"})
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
    for i in prange(n_trials):
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
def window_truth(
    psth: np.ndarray, conditions: np.ndarray, window: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The true PSTH at the window bins and its per-condition sums, for R2.

    ``psth``: (condition, time, neuron); ``conditions``: the conditions used; ``window``:
    (used condition, time) bins compared. Returns ``truth`` (window bin, neuron) float64,
    condition by condition; per used condition the sums of the truth centred on its mean
    over all window bins and of their squares, each (condition, neuron); and (neuron,)
    whether the truth is constant.
    """
    n_cond = len(conditions)
    n_bins, n_neurons = psth.shape[1], psth.shape[2]
    truth = np.empty((window.sum(), n_neurons))
    total = np.zeros(n_neurons)
    row = 0
    for c in range(n_cond):
        for t in range(n_bins):
            if window[c, t]:
                for n in range(n_neurons):
                    truth[row, n] = np.float64(psth[conditions[c], t, n])
                    total[n] += truth[row, n]
                row += 1
    center = total / max(row, 1)
    sum_y = np.zeros((n_cond, n_neurons))
    sum_yy = np.zeros((n_cond, n_neurons))
    constant = np.ones(n_neurons, dtype=np.bool_)
    row = 0
    for c in range(n_cond):
        for _ in range(window[c].sum()):
            for n in range(n_neurons):
                d = truth[row, n] - center[n]
                sum_y[c, n] += d
                sum_yy[c, n] += d * d
                constant[n] &= truth[row, n] == truth[0, n]
            row += 1
    return truth, sum_y, sum_yy, constant


@njit(cache=True, nogil=True)
def shifted_sum(
    values: np.ndarray, trials: np.ndarray, starts: np.ndarray, span: int
) -> np.ndarray:
    """(span, neuron) float64 sum over k of ``values[trials[k], starts[k]:starts[k] + span]``.

    ``values``: C-contiguous (trial, time, neuron); the caller guarantees every slice lies
    inside. Each slice is one contiguous run of span x neuron values, added as a whole.
    """
    n_bins, n_neurons = values.shape[1], values.shape[2]
    flat = values.reshape(-1)
    size = span * n_neurons
    out = np.zeros(size)
    for k in range(len(trials)):
        first = (trials[k] * n_bins + starts[k]) * n_neurons
        out += flat[first : first + size]
    return out.reshape(span, n_neurons)


@njit(cache=True, nogil=True, parallel=True)
def psth_residuals(
    heldin: np.ndarray,
    heldout: np.ndarray,
    trials: np.ndarray,
    shifts: np.ndarray,
    ptr: np.ndarray,
    bounds: np.ndarray,
    window: np.ndarray,
    truth: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Squared error of each condition's jitter-aligned mean rates against its true PSTH.

    ``heldin``, ``heldout``: C-contiguous (trial, time, neuron_i) rates whose neurons
    together make the PSTH's; condition c averages ``trials[ptr[c]:ptr[c + 1]]``, bin t
    showing a trial's bin t - ``shifts[k]`` (the caller guarantees these exist for t in
    [``bounds[c, 0]``, ``bounds[c, 1]``)); ``window``: (condition, time) bins compared;
    ``truth``: (window bin, neuron) true PSTH at the window bins, condition by condition.
    Returns (condition, neuron) sums of squared errors and (condition,) whether a mean
    inside the window is NaN.
    """
    n_cond = len(ptr) - 1
    n_in = heldin.shape[2]
    n_out = heldout.shape[2]
    row_ptr = np.zeros(n_cond + 1, dtype=np.int64)
    for c in range(n_cond):
        row_ptr[c + 1] = row_ptr[c] + window[c].sum()
    sq_error = np.zeros((n_cond, n_in + n_out))
    has_nan = np.zeros(n_cond, dtype=np.bool_)
    for c in prange(n_cond):
        lo, hi = bounds[c, 0], bounds[c, 1]
        if hi <= lo:
            continue
        members = trials[ptr[c] : ptr[c + 1]]
        starts = lo - shifts[ptr[c] : ptr[c + 1]]
        sums_in = shifted_sum(heldin, members, starts, hi - lo)
        sums_out = shifted_sum(heldout, members, starts, hi - lo)
        count = len(members)
        row = row_ptr[c]
        error = sq_error[c]
        nan = False  # (a local: threads writing has_nan[c] per bin would share its cache line)
        for t in range(hi - lo):
            if not window[c, lo + t]:
                continue
            for n in range(n_in):
                d = truth[row, n] - sums_in[t, n] / count
                nan |= d != d
                error[n] += d * d
            for n in range(n_out):
                d = truth[row, n_in + n] - sums_out[t, n] / count
                nan |= d != d
                error[n_in + n] += d * d
            row += 1
        has_nan[c] = nan
    return sq_error, has_nan
