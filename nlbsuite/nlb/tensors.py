"""NLB tensors from a :class:`~nlbsuite.nlb.nwb.Recording`, vectorised, equal to nlb_tools.

The three public builders mirror nlb_tools 0.0.4 (``make_train_input_tensors`` with
behaviour and forward windows, ``make_eval_input_tensors``, ``make_eval_target_tensors``
with PSTHs) and return dicts under the same keys. Arrays are (trial, time, neuron); spike
counts are float32 (NaN where nlb_tools has NaN), behaviour and PSTHs float64.

How nlb_tools' pandas operations map onto arrays here:

- ``resample``: spike counts summed per bin (a bin is NaN when its first 1 ms sample is);
  continuous signals interpolated over NaNs, decimated with
  ``scipy.signal.decimate(n=500, ftype="fir")`` and NaN again where their first sample was;
- ``make_trial_data``: a window holds the grid points ``t`` with
  ``start <= t <= end - 1 us``, cut at the next trial's start unless overlap is allowed;
  without ``allow_nans`` the rows where any signal is NaN are dropped;
- ``make_stacked_array`` / ``make_jagged_array``: fixed-length stacking, or NaN padding at
  the back/front with jitter and a length limit, exactly as written there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlbsuite.errors import UserError
from nlbsuite.nlb.nwb import NAT, NS_PER_MS, Recording, SpikeGroup
from nlbsuite.nlb.specs import DatasetSpec, Window

US = 1000  # 1 microsecond in ns: nlb_tools' half-open window trick


# ----------------------------------------------------------------------------------------
# Resampling
# ----------------------------------------------------------------------------------------


@dataclass
class Binned:
    """A recording at one bin width: dense counts per group plus NaN masks per bin."""

    bin_ms: int
    n_bins: int
    heldin: np.ndarray  # (n_heldin, n_bins) uint8/uint16 counts
    heldin_nan: np.ndarray  # (n_bins,) bool
    heldout: np.ndarray | None
    heldout_nan: np.ndarray | None
    any_nan: np.ndarray  # (n_bins,) any loaded signal NaN in this bin's first sample
    behavior: np.ndarray | None  # (n_bins, dim) resampled behaviour signal


def bin_spikes(group: SpikeGroup, bin_ms: int, n_bins: int) -> np.ndarray:
    """(n_units, n_bins) spike counts per bin, unit-major; uint8 unless a count needs more."""
    counts = np.zeros((group.n_units, n_bins), dtype=np.uint8)
    for u in range(group.n_units):
        bins = group.unit_spikes(u) // bin_ms  # sorted: count runs instead of a bincount
        if len(bins) == 0:
            continue
        starts = np.flatnonzero(np.concatenate([[True], bins[1:] != bins[:-1]]))
        runs = np.diff(np.append(starts, len(bins)))
        top = runs.max()
        if top > np.iinfo(counts.dtype).max:
            if top > np.iinfo(np.uint16).max:
                raise UserError("spike counts per bin exceed 65535: not NLB spike data")
            counts = counts.astype(np.uint16)
        counts[u, bins[starts]] = runs
    return counts


_FIR_TAPS = 501  # nlb_tools: decimate(n=500, ftype="fir")


def fir_lowpass(numtaps: int, cutoff: float) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, cutoff, window="hamming")`` (``cutoff`` relative to
    Nyquist), the same operations in NumPy: importing scipy.signal alone takes ~1 s.

    Windowed sinc ``cutoff * sinc(cutoff * m)`` at ``m = n - (numtaps - 1) / 2`` times the
    symmetric Hamming window ``0.54 + 0.46 cos(linspace(-pi, pi))``, scaled to unit sum.
    """
    m = np.arange(numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m)
    window = np.zeros(numtaps)
    window += 0.54
    window += (1.0 - 0.54) * np.cos(np.linspace(-np.pi, np.pi, numtaps))
    h *= window
    return h / np.sum(h)


def resample_signal(
    x: np.ndarray, factor: int, dtype: np.dtype | None = None, bins: np.ndarray | None = None
) -> np.ndarray:
    """nlb_tools' resampling of a continuous (n_ms, dim) signal to every ``factor`` ms.

    NaNs are linearly interpolated (both directions), then the signal is low-pass filtered
    and subsampled exactly as ``scipy.signal.decimate(x, factor, n=500, ftype="fir")``
    (zero-phase FIR: output ``k`` is ``sum_d b[250 + d] x[k * factor + d]``, zeros outside);
    the output is NaN where the input's first sample of the bin was NaN. With ``bins``,
    only those outputs are computed (the rest stay NaN): the same numbers at a fraction of
    the cost when trials cover part of the recording.
    """
    nan_mask = np.isnan(x[::factor])
    dtype = np.dtype(dtype or x.dtype)
    work_dtype = x.dtype if x.dtype.kind == "f" and x.dtype != np.float16 else np.dtype(np.float64)
    if nan_mask.any() or np.isnan(x).any():
        x = x.astype(work_dtype, copy=True)
        pos = np.arange(len(x))
        for d in range(x.shape[1]):
            col = x[:, d]
            ok = ~np.isnan(col)
            if ok.any() and not ok.all():
                x[:, d] = np.interp(pos, pos[ok], col[ok])
    taps = fir_lowpass(_FIR_TAPS, 1.0 / factor).astype(work_dtype)
    n_out = -(-len(x) // factor)
    if bins is None:
        from scipy import signal

        out = signal.decimate(x, factor, axis=0, n=_FIR_TAPS - 1, ftype="fir")
    else:
        half = (_FIR_TAPS - 1) // 2
        padded = np.zeros((len(x) + 2 * half, x.shape[1]), dtype=work_dtype)
        padded[half : half + len(x)] = x
        windows = np.lib.stride_tricks.sliding_window_view(padded, _FIR_TAPS, axis=0)
        out = np.full((n_out, x.shape[1]), np.nan, dtype=work_dtype)
        reversed_taps = taps[::-1].copy()
        for run in np.split(bins, np.flatnonzero(np.diff(bins) != 1) + 1):  # runs of bins
            if len(run):  # a strided view of the run's windows: nothing gathered or copied
                out[run] = windows[run[0] * factor : run[-1] * factor + 1 : factor] @ reversed_taps
    out[nan_mask] = np.nan
    return out.astype(dtype, copy=False)


def bin_recording(
    rec: Recording, bin_ms: int, behavior_field: str | None, behavior_bins: np.ndarray | None = None
) -> Binned:
    """Resample a recording to ``bin_ms`` (nlb_tools' ``NWBDataset.resample``).

    ``behavior_bins``: the only bins whose behaviour is needed (default all).
    """
    n_bins = -(-rec.n_ms // bin_ms)
    behavior = None
    if behavior_field is not None and behavior_field in rec.signals:
        raw = rec.signals[behavior_field]
        if behavior_field == "target_pos":
            behavior = raw[::bin_ms].astype(np.float64)
        else:
            behavior = resample_signal(
                raw, bin_ms, rec.signal_dtypes.get(behavior_field), behavior_bins
            )
    held = rec.heldout
    return Binned(
        bin_ms=bin_ms,
        n_bins=n_bins,
        heldin=bin_spikes(rec.heldin, bin_ms, n_bins),
        heldin_nan=~rec.heldin.valid_ms[::bin_ms],
        heldout=None if held is None else bin_spikes(held, bin_ms, n_bins),
        heldout_nan=None if held is None else ~held.valid_ms[::bin_ms],
        any_nan=rec.any_nan_ms[::bin_ms].copy(),
        behavior=behavior,
    )


def behavior_bins(
    rec: Recording, spec: DatasetSpec, bin_ms: int, masks: list[tuple[Window, np.ndarray]]
) -> np.ndarray:
    """Sorted bins of every behaviour window (lagged) of the given (window, trials) pairs."""
    n_bins = -(-rec.n_ms // bin_ms)
    parts = []
    for window, mask in masks:
        win = trial_windows(rec, mask, window.shifted(spec.lag_ms or 0), bin_ms, n_bins)
        parts += [np.arange(f, f + n) for f, n in zip(win.first, win.length, strict=True)]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


# ----------------------------------------------------------------------------------------
# Trial windows
# ----------------------------------------------------------------------------------------


@dataclass
class Windows:
    """Per kept trial: its row in the trial table, first bin and number of bins.

    ``align_bin``: the alignment time rounded up to the bin grid, in bins (nlb_tools'
    ``align_time`` origin).
    """

    rows: np.ndarray
    first: np.ndarray
    length: np.ndarray
    align_bin: np.ndarray


def _ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    return -((-a) // b)


def trial_windows(
    rec: Recording,
    selected: np.ndarray,
    window: Window,
    bin_ms: int,
    n_bins: int,
    align_ns: np.ndarray | None = None,
) -> Windows:
    """The grid points of each selected trial's window (nlb_tools' ``make_trial_data``).

    ``align_ns`` (ns, one per trial-table row) replaces the align field, e.g. jittered.
    Trials with a missing time are left out, as nlb_tools' ``dropna`` does.
    """
    trials = rec.trials
    rows = np.flatnonzero(selected)
    if window.align_field is not None and align_ns is None:
        if window.align_field not in trials:
            raise UserError(f"trials table has no '{window.align_field}' column")
        align_ns = trials[window.align_field]
    for name in (window.start_field, window.end_field):
        if name not in trials:
            raise UserError(f"trials table has no '{name}' column")
    start = trials[window.start_field][rows]
    end = trials[window.end_field][rows]
    next_start = np.append(trials["start_time"][1:], NAT)[rows]
    if window.align_field is not None:
        left = right = align_ns[rows]
    else:
        left, right = start, end
    if window.align_range is not None:
        s, e = window.align_range
        if ((e - s) / bin_ms) % 1 != 0:  # nlb_tools rounds the window to whole bins
            e = s + round((e - s) / bin_ms) * bin_ms
        align_start = np.where(left == NAT, NAT, left + round(s * NS_PER_MS))
        align_end = np.where(right == NAT, NAT, right + round(e * NS_PER_MS) - US)
    else:
        align_start = start
        align_end = np.where(end == NAT, NAT, end - US)
    # nlb_tools drops rows with any missing time (``dropna``)
    missing = (align_start == NAT) | (align_end == NAT) | (start == NAT) | (left == NAT)
    # End bound: min(next trial start, window start) of the next selected row
    both_nat = (next_start == NAT) & (align_start == NAT)
    bound_src = np.where(
        next_start == NAT,
        align_start,
        np.where(align_start == NAT, next_start, np.minimum(next_start, align_start)),
    )
    bound_src[both_nat] = NAT
    end_bound = np.append(bound_src[1:], NAT)
    endpoint = align_end.copy()
    if not window.allow_overlap:
        cut = (end_bound != NAT) & (align_end > end_bound) & ~missing
        endpoint[cut] = end_bound[cut] - US
    keep = ~missing
    bw = bin_ms * NS_PER_MS
    first = np.maximum(_ceil_div(align_start[keep], bw), 0)
    last = np.minimum(endpoint[keep] // bw, n_bins - 1)
    length = np.maximum(last - first + 1, 0)
    return Windows(
        rows=rows[keep],
        first=first.astype(np.int64),
        length=length.astype(np.int64),
        align_bin=_ceil_div(left[keep], bw).astype(np.int64),
    )


def window_bins(win: Windows, drop: np.ndarray | None) -> list[np.ndarray]:
    """Bin indices of each trial's rows; rows where ``drop`` is True are left out."""
    out = []
    for f, n in zip(win.first, win.length, strict=True):
        idx = np.arange(f, f + n)
        out.append(idx if drop is None else idx[~drop[idx]])
    return out


def fixed_index(win: Windows, drop: np.ndarray | None, what: str) -> np.ndarray:
    """(trial, time) bin indices for equal-length windows; error if lengths differ."""
    if len(win.rows) == 0:
        return np.zeros((0, 0), dtype=np.int64)
    lengths = win.length
    if np.all(lengths == lengths[0]):
        idx = win.first[:, None] + np.arange(lengths[0])[None, :]
        if drop is None or not drop[idx].any():  # the usual case: nothing to drop
            return idx
    rows = window_bins(win, drop)
    sizes = {len(r) for r in rows}
    if len(sizes) != 1:
        raise UserError(
            f"{what}: trial windows have unequal lengths {sorted(sizes)[:5]} after cutting "
            "at overlaps, recording edges or missing data (nlb_tools cannot stack them either)"
        )
    return np.stack(rows)


def _take(counts: np.ndarray, nan_bins: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(trial, time, unit) float32 spikes of bins ``idx`` from unit-major ``counts``."""
    out = np.ascontiguousarray(np.moveaxis(counts[:, idx], 0, -1), dtype=np.float32)
    if idx.size and nan_bins[idx].any():
        out[nan_bins[idx]] = np.nan
    return out


def stacked_spikes(
    binned: Binned, win: Windows, allow_nans: bool, heldout: bool, what: str
) -> np.ndarray:
    """(trial, time, neuron) spikes of fixed-length windows (``make_stacked_array``)."""
    idx = fixed_index(win, None if allow_nans else binned.any_nan, what)
    counts, nan_bins = (
        (binned.heldout, binned.heldout_nan) if heldout else (binned.heldin, binned.heldin_nan)
    )
    if counts is None:
        raise UserError(f"{what}: the recording has no held-out units")
    if idx.size == 0:
        return np.zeros(
            (len(win.rows), idx.shape[1] if idx.ndim == 2 else 0, counts.shape[0]), np.float32
        )
    return _take(counts, nan_bins, idx)


def jagged(
    values: np.ndarray,
    win: Windows,
    trial_rows: np.ndarray,
    drop: np.ndarray | None,
    max_len: int | None = None,
    pad: str = "back",
    jitter_bins: np.ndarray | None = None,
) -> np.ndarray:
    """NaN-padded (trial, time, dim) arrays of uneven windows (``make_jagged_array``).

    ``values``: (n_bins, dim) float source with NaN; ``trial_rows``: the trial-table rows
    wanted, in order (a row without a window stays all-NaN); ``max_len``: ``seg_len`` in
    bins, default the longest window.
    """
    if drop is None and jitter_bins is None and pad == "back":  # vectorised common case
        return _jagged_back(values, win, trial_rows, max_len)
    rows = window_bins(win, drop)
    by_row = dict(zip(win.rows.tolist(), rows, strict=True))
    if max_len is None:
        max_len = max((len(r) for r in rows), default=0)
    out = np.full((len(trial_rows), max_len, values.shape[1]), np.nan)
    for i, row in enumerate(trial_rows.tolist()):
        idx = by_row.get(row)
        if idx is None:
            continue
        jit = 0 if jitter_bins is None else int(jitter_bins[i])
        data = values[idx]
        if pad == "front":
            if jit == 0:
                data = data[-max_len:] if max_len else data[:0]
                if len(data):
                    out[i, -data.shape[0] :] = data
            elif jit > 0:
                data = data[-(max_len - jit) :]
                out[i, -(data.shape[0] + jit) : -jit] = data
            else:
                data = data[-(max_len - jit) : jit]
                if len(data):
                    out[i, -data.shape[0] :] = data
        else:  # nlb_tools' back padding, including its fall-through for jit == 0
            if jit > 0:
                data = data[jit : max_len + jit]
                out[i, : data.shape[0]] = data
            else:
                data = data[: max_len - jit]
                out[i, -jit : data.shape[0] - jit] = data
    return out


def _jagged_back(
    values: np.ndarray, win: Windows, trial_rows: np.ndarray, max_len: int | None
) -> np.ndarray:
    """:func:`jagged` without dropped rows or jitter, back-padded, without a Python loop."""
    if max_len is None:
        max_len = int(win.length.max()) if len(win.length) else 0
    out = np.full((len(trial_rows), max_len, values.shape[1]), np.nan)
    pos = np.searchsorted(win.rows, trial_rows)
    pos = np.clip(pos, 0, max(len(win.rows) - 1, 0))
    has = (
        (len(win.rows) > 0) & (win.rows[pos] == trial_rows)
        if len(win.rows)
        else np.zeros(len(trial_rows), bool)
    )
    if not has.any():
        return out
    first, length = win.first[pos[has]], np.minimum(win.length[pos[has]], max_len)
    t = np.arange(max_len)
    inside = t[None, :] < length[:, None]
    idx = np.where(inside, first[:, None] + t[None, :], 0)
    block = values[idx]
    block[~inside] = np.nan
    out[has] = block
    return out


def _spike_values(binned: Binned, heldout: bool) -> np.ndarray:
    """(n_bins, n_units) float64 counts with NaN bins, for :func:`jagged`."""
    counts, nan_bins = (
        (binned.heldout, binned.heldout_nan) if heldout else (binned.heldin, binned.heldin_nan)
    )
    vals = counts.T.astype(np.float64)
    vals[nan_bins] = np.nan
    return vals


# ----------------------------------------------------------------------------------------
# Dataset-specific pieces: jitter, behaviour, masks
# ----------------------------------------------------------------------------------------


def jitter_ms(
    rec: Recording, spec: DatasetSpec, mask: np.ndarray, bin_ms: int, seed: int
) -> np.ndarray:
    """DMFC_RSG jitter (ms) of the masked trials, drawn as nlb_tools' ``_prep_jitter``."""
    assert spec.jitter is not None
    trials = rec.trials
    rows = np.flatnonzero(mask)
    interval = trials.values(spec.jitter.interval_field)[rows]
    is_test = trials.split[rows] == "test"
    upper = np.where(
        is_test, 0.0, np.clip(spec.jitter.total_ms - interval, 0.0, spec.jitter.max_ms)
    )
    lo = np.floor(np.round(np.zeros(len(rows)) / bin_ms, 4))
    hi = np.floor(np.round(upper / bin_ms, 4))
    u = np.random.RandomState(seed).random_sample(len(rows))
    return np.round(u * (hi - lo) + lo) * bin_ms


def _jittered_align(
    rec: Recording, field: str, masks_and_jitter: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    base = rec.trials[field]
    out = np.full(len(base), NAT, dtype=np.int64)
    for mask, jit in masks_and_jitter:
        rows = np.flatnonzero(mask)
        vals = base[rows]
        shifted = vals + np.where(np.isnan(jit), 0, jit * NS_PER_MS).astype(np.int64)
        out[rows] = np.where((vals == NAT) | np.isnan(jit), NAT, shifted)
    return out


def trial_info_behavior(rec: Recording, spec: DatasetSpec, mask: np.ndarray) -> np.ndarray:
    """(trial, field) behaviour from the trials table, NaN on outlier trials."""
    rows = np.flatnonzero(mask)
    cols = [rec.trials.values(name)[rows] for name in spec.behavior_fields]
    out = np.stack(cols, axis=1) if cols else np.zeros((len(rows), 0))
    if spec.outlier_field is not None:
        keep = rec.trials.values(spec.outlier_field)[rows] == 0
        out[~keep] = np.nan
    return out


def decode_masks(rec: Recording, spec: DatasetSpec, mask: np.ndarray) -> np.ndarray:
    """(trial, 2) Area2_Bump decoder masks: ``[field == 0, field == 1]``."""
    assert spec.decode_mask_field is not None
    vals = rec.trials.values(spec.decode_mask_field)[np.flatnonzero(mask)]
    return np.stack([vals == 0, vals == 1]).T


def _data_behavior(
    binned: Binned,
    rec: Recording,
    spec: DatasetSpec,
    window: Window,
    mask: np.ndarray,
    align_ns: np.ndarray | None,
) -> np.ndarray:
    if binned.behavior is None:
        raise UserError(
            f"{rec.paths[0]}: no '{spec.behavior_field}' behaviour TimeSeries on the 1 ms grid"
        )
    bwin = window.shifted(spec.lag_ms or 0)
    win = trial_windows(rec, mask, bwin, binned.bin_ms, binned.n_bins, align_ns)
    return jagged(binned.behavior, win, np.flatnonzero(mask), drop=None)


# ----------------------------------------------------------------------------------------
# The three nlb_tools calls
# ----------------------------------------------------------------------------------------


def split_mask(rec: Recording, splits: tuple[str, ...]) -> np.ndarray:
    return np.isin(rec.trials.split, splits)


def _jittered(
    rec: Recording, spec: DatasetSpec, window: Window, jits: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray | None:
    """Alignment times shifted by jitter (nlb_tools' ``*_jitter_time`` column), or None."""
    if spec.jitter is None:
        return None
    if window.align_field is None:
        raise UserError(f"{spec.name}: jitter needs an align_field in the window")
    return _jittered_align(rec, window.align_field, jits)


def input_windows(
    rec: Recording, binned: Binned, spec: DatasetSpec, mask: np.ndarray, seed: int = 0
) -> tuple[Window, np.ndarray | None, Windows, Windows]:
    """Model-input window, align override (jitter), input and forward windows of ``mask``."""
    bw = binned.bin_ms
    jits = []
    if spec.jitter is not None:
        jits = [(mask, jitter_ms(rec, spec, mask, bw, seed))]
    window = spec.input_window
    align = _jittered(rec, spec, window, jits)
    win = trial_windows(rec, mask, window, bw, binned.n_bins, align)
    fwin = trial_windows(rec, mask, window.forward(spec.fp_len_ms), bw, binned.n_bins, align)
    return window, align, win, fwin


def make_train_input(
    rec: Recording, binned: Binned, spec: DatasetSpec, train_mask: np.ndarray, seed: int = 0
) -> dict[str, np.ndarray]:
    """``make_train_input_tensors(include_behavior=True, include_forward_pred=True)``."""
    window, align, win, fwin = input_windows(rec, binned, spec, train_mask, seed)
    out = {
        "train_spikes_heldin": stacked_spikes(binned, win, False, False, "train_spikes_heldin"),
        "train_spikes_heldout": stacked_spikes(binned, win, False, True, "train_spikes_heldout"),
    }
    if spec.behavior_source == "data":
        out["train_behavior"] = _data_behavior(binned, rec, spec, window, train_mask, align)
    else:
        out["train_behavior"] = trial_info_behavior(rec, spec, train_mask)
    out["train_spikes_heldin_forward"] = stacked_spikes(binned, fwin, False, False, "forward")
    out["train_spikes_heldout_forward"] = stacked_spikes(binned, fwin, False, True, "forward")
    return out


def make_eval_input(
    rec: Recording, binned: Binned, spec: DatasetSpec, eval_mask: np.ndarray, seed: int = 0
) -> dict[str, np.ndarray]:
    """``make_eval_input_tensors``: held-in (and, without test trials, held-out) spikes."""
    _, _, win, _ = input_windows(rec, binned, spec, eval_mask, seed)
    out = {"eval_spikes_heldin": stacked_spikes(binned, win, True, False, "eval_spikes_heldin")}
    has_test = bool(np.any(rec.trials.split[eval_mask] == "test"))
    if not has_test and binned.heldout is not None:
        out["eval_spikes_heldout"] = stacked_spikes(binned, win, True, True, "eval_spikes_heldout")
    return out


def make_eval_target(
    rec: Recording,
    binned: Binned,
    spec: DatasetSpec,
    train_mask: np.ndarray,
    eval_mask: np.ndarray,
    seed: int = 0,
    include_psth: bool = True,
) -> dict[str, object]:
    """``make_eval_target_tensors(include_psth=True)`` content for one dataset key."""
    from nlbsuite.nlb.psth import make_psth

    bw = binned.bin_ms
    train_jit = eval_jit = None
    jits = []
    if spec.jitter is not None:
        train_jit = jitter_ms(rec, spec, train_mask, bw, seed)
        eval_jit = jitter_ms(rec, spec, eval_mask, bw, seed)
        jits = [(train_mask, train_jit), (eval_mask, eval_jit)]
    window = spec.target_window
    align = _jittered(rec, spec, window, jits)
    drop = binned.any_nan  # eval_make_params never allow NaNs
    if binned.heldout is None:
        raise UserError(f"{rec.paths[0]}: no held-out units: the eval target needs them")
    out: dict[str, object] = {}
    if window.align_range is None:
        seg = None if spec.eval_seg_len_ms is None else round(spec.eval_seg_len_ms / bw)
        win = trial_windows(rec, eval_mask, window, bw, binned.n_bins, align)
        jit_bins = None if eval_jit is None else np.round(eval_jit / bw).astype(np.int64)
        out["eval_spikes_heldout"] = jagged(
            _spike_values(binned, True),
            win,
            np.flatnonzero(eval_mask),
            drop,
            seg,
            spec.eval_pad,
            jit_bins,
        ).astype(np.float32)
    else:
        win = trial_windows(rec, eval_mask, window, bw, binned.n_bins, align)
        out["eval_spikes_heldout"] = stacked_spikes(binned, win, False, True, "eval_spikes_heldout")
    if spec.behavior_source == "data":
        out["train_behavior"] = _data_behavior(binned, rec, spec, window, train_mask, align)
        out["eval_behavior"] = _data_behavior(binned, rec, spec, window, eval_mask, align)
    else:
        out["train_behavior"] = trial_info_behavior(rec, spec, train_mask)
        out["eval_behavior"] = trial_info_behavior(rec, spec, eval_mask)
    fwin = trial_windows(rec, eval_mask, window.forward(spec.fp_len_ms), bw, binned.n_bins, align)
    out["eval_spikes_heldin_forward"] = stacked_spikes(binned, fwin, False, False, "forward")
    out["eval_spikes_heldout_forward"] = stacked_spikes(binned, fwin, False, True, "forward")
    if spec.decode_mask_field is not None:
        out["train_decode_mask"] = decode_masks(rec, spec, train_mask)
        out["eval_decode_mask"] = decode_masks(rec, spec, eval_mask)
    if include_psth and spec.psth is not None:
        ignore = ~(train_mask | eval_mask)
        train_idx, eval_idx, psth = make_psth(rec, spec.psth, bw, train_mask, eval_mask, ignore)
        out["eval_cond_idx"] = eval_idx
        out["train_cond_idx"] = train_idx
        out["psth"] = psth
        if spec.jitter is not None:
            out["eval_jitter"] = np.round(eval_jit / bw).astype(int)
            out["train_jitter"] = np.round(train_jit / bw).astype(int)
    return out
