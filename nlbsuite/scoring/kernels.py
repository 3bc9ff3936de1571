"""Compiled single-pass loops behind the scorer (numba, cached on disk after the first call).

Each kernel reads its (trial, time, neuron) arrays once, in whatever float dtype they come
(float32 submissions are never copied: each value is cast to float64 before any arithmetic,
as nlb_tools casts whole arrays), and accumulates in float64; logs are fdlibm's, within an
ulp of numpy's (tests check both against the exact log). Trials (or conditions) run
in parallel on all cores (``NUMBA_NUM_THREADS`` caps them); every output element is written
by one iteration in a fixed order, so results do not depend on the number of threads.
They hold no metric logic: :mod:`nlbsuite.scoring.stats` turns their sums into nlb_tools'
numbers, and the oracle tests compare those with nlb_tools' ``evaluate``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# fdlibm's e_log.c (Sun Microsystems, freely distributable): log(x) = k*ln2 + log(1 + f),
# with log(1 + f) = f - f^2/2 + s*(f^2/2 + R(s*s)), s = f / (2 + f), R a minimax polynomial.
# Error below 1 ulp; no table and no branch, so the compiler vectorises it.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT2 = math.sqrt(2.0)
_MIN_STEP, _MIN_ROWS = 64, 8  # a vectorised step of poisson_sums: values, time bins


@njit(inline="always", error_model="numpy")
def _log_parts(exponent: int, mantissa: float) -> float:
    """log(mantissa * 2**exponent) for ``mantissa`` in [1, 2): fdlibm's ``__ieee754_log``
    after its range reduction; error < 1 ulp, as numpy's own log."""
    big = mantissa > _SQRT2
    f = (mantissa * 0.5 if big else mantissa) - 1.0
    k = np.float64(exponent + 1 if big else exponent)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    half_f2 = 0.5 * f * f
    return k * _LN2_HI - ((half_f2 - (s * (half_f2 + r) + k * _LN2_LO)) - f)


@njit(inline="always")
def _float_layout(bits: np.ndarray) -> tuple[int, int, int, int, float]:
    """(mantissa bits, exponent mask, exponent bias, mantissa mask, 2**-mantissa bits) of
    the IEEE floats whose bit patterns ``bits`` holds (int32: float32, int64: float64)."""
    if bits.itemsize == 8:
        return 52, 0x7FF, 1023, (1 << 52) - 1, 2.0**-52
    return 23, 0xFF, 127, (1 << 23) - 1, 2.0**-23


@njit(inline="always", error_model="numpy")
def _log_of_bits(
    bits: int, n_mant: int, e_max: int, bias: int, frac_mask: int, scale: float
) -> tuple[int, float]:
    """(biased exponent field, log) of the float whose bit pattern is ``bits`` (layout from
    :func:`_float_layout`); the log is right for positive normal floats only."""
    exponent = (bits >> n_mant) & e_max
    return exponent, _log_parts(exponent - bias, 1.0 + np.float64(bits & frac_mask) * scale)


@njit(cache=True, nogil=True, error_model="numpy")
def log(values: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Float64 natural log of 1-d positive normal float32 or float64 ``values`` (``bits``:
    the same memory viewed as int32 or int64), with the arithmetic of :func:`poisson_sums`."""
    n_mant, e_max, bias, frac_mask, scale = _float_layout(bits)
    out = np.empty(len(values))
    for j in range(len(values)):
        out[j] = _log_of_bits(np.int64(bits[j]), n_mant, e_max, bias, frac_mask, scale)[1]
    return out


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def poisson_sums(
    rates: np.ndarray,
    rate_bits: np.ndarray,
    spikes: np.ndarray,
    zero_rate: float,
    log_zero_rate: float,
    model: np.ndarray,
    counts: np.ndarray,
    bins: np.ndarray,
) -> int:
    """Poisson sums per (trial, neuron) over the bins whose count is not NaN.

    ``rates``, ``spikes``: C-contiguous (trial, time, neuron), float32 or float64;
    ``rate_bits``: ``rates`` viewed as int32 or int64 (its log is taken from the bits).
    Writes to ``model`` the NLL without log(count!) (sum of rate - count * log(rate)), to
    ``counts`` the spike counts and to ``bins`` the scored bins, each (trial, neuron)
    float64. A zero rate counts as ``zero_rate`` (nlb_tools' rule; ``log_zero_rate`` is its
    log). Returns the number of scored bins whose rate is not positive (zero, NaN or
    negative: the caller checks which).

    Each trial is one flat run of time x neuron values, taken several whole bins at a time
    (at least ``_MIN_ROWS`` bins and ``_MIN_STEP`` values) into per-lane sums that are
    folded per neuron at the end, so the loop vectorises whatever the number of neurons.
    Trials with subnormal or infinite rates are summed again with the C library's log.
    """
    n_trials, n_bins, n_neurons = spikes.shape
    if n_neurons == 0:
        return 0
    n_mant, e_max, bias, frac_mask, scale = _float_layout(rate_bits)
    size = n_bins * n_neurons
    step = max(_MIN_ROWS, -(-_MIN_STEP // n_neurons)) * n_neurons
    n_bad = 0
    for i in prange(n_trials):
        r_flat, s_flat = rates[i].reshape(size), spikes[i].reshape(size)
        b_flat = rate_bits[i].reshape(size)
        lane_model, lane_counts, lane_bins = np.zeros(step), np.zeros(step), np.zeros(step)
        bad = 0
        unusual = 0
        for start in range(0, size, step):
            r_step, b_step = r_flat[start : start + step], b_flat[start : start + step]
            s_step = s_flat[start : start + step]
            for q in range(len(s_step)):
                s, r = np.float64(s_step[q]), np.float64(r_step[q])
                b = np.int64(b_step[q])
                exponent, log_r = _log_of_bits(b, n_mant, e_max, bias, frac_mask, scale)
                scored = s == s
                positive = r > 0.0
                bad += 1 if scored & (not positive) else 0
                unusual += 1 if scored & positive & ((exponent == 0) | (exponent == e_max)) else 0
                zero = r == 0.0
                r = zero_rate if zero else r
                log_r = log_zero_rate if zero else log_r
                spiked = s > 0.0
                lane_model[q] += (r - s * log_r if spiked else r) if scored else 0.0
                lane_counts[q] += s if spiked else 0.0
                lane_bins[q] += 1.0 if scored else 0.0
        if unusual:  # subnormal or infinite rates: the C library's log, value by value
            lane_model[:] = 0.0
            for j in range(size):
                s, r = np.float64(s_flat[j]), np.float64(r_flat[j])
                if s == s:
                    log_r = math.log(r) if r > 0.0 else log_zero_rate
                    r = r if r > 0.0 else zero_rate
                    lane_model[j % step] += r - s * log_r if s > 0.0 else r
        n_bad += bad
        model[i], counts[i], bins[i] = 0.0, 0.0, 0.0
        for lane in range(0, step, n_neurons):
            for n in range(n_neurons):
                model[i, n] += lane_model[lane + n]
                counts[i, n] += lane_counts[lane + n]
                bins[i, n] += lane_bins[lane + n]
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
