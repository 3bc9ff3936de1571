"""Condition-averaged PSTHs equal to nlb_tools' ``_make_psth``, without smoothing the
whole recording.

nlb_tools smooths every unit's 1 ms spike train with a Gaussian (sd ``kern_sd`` ms, width
``int(6 sd)``, ``"same"`` convolution inside each NaN-free stretch), resamples to the bin
width (sum of the bin's 1 ms values; NaN when its first sample is NaN) and averages
aligned trials of each condition, skipping NaNs. All of that is linear in the spikes, so
for a trial whose window lies inside one NaN-free stretch, its smoothed-binned window is
``A @ x``: ``A`` (bins, ms) folds kernel and binning together and ``x`` is the trial's
1 ms spike histogram (cut to its stretch). Trials sharing condition and bin coverage are
summed first, as 1 ms histograms, so one matrix product per group of trials gives their
summed PSTH. A trial touching missing data is computed on its own, exactly.
"""

from __future__ import annotations

import numpy as np

from nlbsuite.nlb.nwb import Recording, SpikeGroup
from nlbsuite.nlb.specs import PsthSpec
from nlbsuite.nlb.tensors import trial_windows

_CHUNK_CELLS = 4_000_000  # histogram cells per batch (float64: 32 MB)


def gaussian_kernel(kern_sd_ms: int) -> np.ndarray:
    """nlb_tools' smoothing kernel at 1 ms: ``scipy.signal.windows.gaussian(int(6 sd), sd)``
    (the same operations, without importing scipy.signal), normalised."""
    n_taps = int(6 * kern_sd_ms)
    n = np.arange(n_taps, dtype=np.float64) - (n_taps - 1.0) / 2.0
    window = np.exp(-(n**2) / (2 * kern_sd_ms * kern_sd_ms))
    return window / np.sum(window)


def binned_smoothing_matrix(kernel: np.ndarray, bin_ms: int, n_bins: int) -> np.ndarray:
    """(n_bins, n_bins * bin_ms + K - 1) matrix: 1 ms histogram -> smoothed, binned values.

    Column ``v`` is the ms ``first_ms - (K - 1 - (K - 1) // 2) + v`` of the window; entry
    ``(j, v)`` is ``sum_r kernel[j * bin_ms + r + K - 1 - v]`` over the bin's samples ``r``.
    """
    k = len(kernel)
    # profile[d] = sum_r kernel[r + K - 1 - d], d = v - j * bin_ms in [0, K + bin_ms - 2]
    d = np.arange(k + bin_ms - 1)
    taps = np.arange(bin_ms)[None, :] + k - 1 - d[:, None]
    profile = np.where((taps >= 0) & (taps < k), kernel[np.clip(taps, 0, k - 1)], 0.0).sum(axis=1)
    offset = np.arange(n_bins * bin_ms + k - 1)[None, :] - bin_ms * np.arange(n_bins)[:, None]
    inside = (offset >= 0) & (offset < len(profile))
    return np.where(inside, profile[np.clip(offset, 0, len(profile) - 1)], 0.0)


def _runs(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of True."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


class _GroupSmoother:
    """Smoothed, binned window sums for the units of one :class:`SpikeGroup`."""

    def __init__(self, group: SpikeGroup, n_ms: int, kernel: np.ndarray, bin_ms: int):
        self.group = group
        self.n_ms = n_ms
        self.kernel = kernel
        self.bin_ms = bin_ms
        k = len(kernel)
        self.center = (k - 1) // 2
        self.lead = k - 1 - self.center  # ms of history a window needs before its start
        self.run_start, self.run_end = _runs(group.valid_ms)
        self._mats: dict[int, np.ndarray] = {}

    def matrix(self, n_bins: int) -> np.ndarray:
        """:func:`binned_smoothing_matrix` for ``n_bins`` (a corner of one cached matrix)."""
        have = self._mats.get(0)
        if have is None or have.shape[0] < n_bins:
            size = max(n_bins, 64, 0 if have is None else 2 * have.shape[0])
            have = binned_smoothing_matrix(self.kernel, self.bin_ms, size)
            self._mats[0] = have
        return have[:n_bins, : n_bins * self.bin_ms + len(self.kernel) - 1]

    @property
    def reach(self) -> int:
        """Bins before a window start that its first spikes still reach (kernel + bin)."""
        return -(-(len(self.kernel) + self.bin_ms - 2) // self.bin_ms)

    def classify(
        self, first: np.ndarray, length: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each window: inside one NaN-free run? and that run's [start, end)."""
        a = first * self.bin_ms
        b = (first + length) * self.bin_ms  # exclusive
        if len(self.run_start) == 0:
            return np.zeros(len(a), bool), a, b
        r = np.searchsorted(self.run_start, a, side="right") - 1
        rc = np.clip(r, 0, None)
        clean = (r >= 0) & (a >= self.run_start[rc]) & (b <= self.run_end[rc]) & (b <= self.n_ms)
        return clean, self.run_start[rc], self.run_end[rc]

    def histograms(
        self,
        base: np.ndarray,
        lo: np.ndarray,
        hi: np.ndarray,
        sub: np.ndarray,
        n_sub: int,
        width: int,
    ) -> np.ndarray:
        """(n_sub, width, n_units) 1 ms spike histograms: trial ``t``'s spikes in
        ``[lo_t, hi_t]`` land in subgroup ``sub_t`` at column ``ms - base_t``."""
        n = self.group.n_units
        group = self.group
        # spikes of every (trial, unit) pair: one searchsorted per unit over all trials
        a = np.empty((n, len(base)), dtype=np.int64)
        b = np.empty((n, len(base)), dtype=np.int64)
        for u in range(n):
            ms_u = group.unit_spikes(u)
            a[u] = np.searchsorted(ms_u, lo, side="left") + group.unit_start[u]
            b[u] = np.searchsorted(ms_u, hi, side="right") + group.unit_start[u]
        counts = np.maximum(b - a, 0).ravel()
        # key = (sub * width + ms - base) * n + unit = ms * n + per-pair constant
        const = ((sub * width - base)[None, :] * n + np.arange(n)[:, None]).ravel()
        first = a.ravel() - np.concatenate([[0], np.cumsum(counts)[:-1]])
        spike = np.arange(int(counts.sum())) + np.repeat(first, counts)
        key = group.spike_ms[spike] * n + np.repeat(const, counts)
        hist = np.bincount(key, minlength=n_sub * width * n).astype(np.float64)
        return hist.reshape(n_sub, width, n)

    def exact(self, first: int, n_bins: int) -> np.ndarray:
        """(n_bins, n_units) smoothed, binned window of one trial, NaN-aware (slow path)."""
        f, k = self.bin_ms, len(self.kernel)
        width = n_bins * f + k - 1
        lo = first * f - self.lead
        ms_local = lo + np.arange(width)
        inside = (ms_local >= 0) & (ms_local < self.n_ms)
        valid = np.zeros(width, dtype=bool)
        valid[inside] = self.group.valid_ms[ms_local[inside]]
        x = np.zeros((width, self.group.n_units))
        for u in range(self.group.n_units):
            ms = self.group.unit_spikes(u)
            ms = ms[(ms >= lo) & (ms < lo + width)]
            np.add.at(x[:, u], ms - lo, 1.0)
        from scipy.signal import fftconvolve

        smooth = np.full_like(x, np.nan)
        for s, e in zip(*_runs(valid), strict=True):
            full = fftconvolve(x[s:e], self.kernel[:, None], axes=0)
            smooth[s:e] = np.maximum(full[self.center : self.center + (e - s)], 0.0)
        first_local = self.lead + np.arange(n_bins) * f
        cols = first_local[:, None] + np.arange(f)[None, :]
        out = np.nansum(smooth[cols], axis=1)
        out[~valid[first_local]] = np.nan
        return out


def _clean_sums(
    sm: _GroupSmoother,
    cols: slice,
    cond: np.ndarray,
    first: np.ndarray,
    length: np.ndarray,
    q0: np.ndarray,
    run_lo: np.ndarray,
    run_hi: np.ndarray,
    spans: list[tuple[int, int]],
    sums: list[np.ndarray],
    counts: list[np.ndarray],
) -> None:
    """Add the smoothed windows of clean trials to their condition's sums and counts.

    Trials of a condition that end on the same align bin share one histogram over the
    union of their windows and one matrix product. A trial starting later than the union
    also reaches bins before its own start through its first spikes; that leak is computed
    from those spikes alone and subtracted.
    """
    f, k = sm.bin_ms, len(sm.kernel)
    q1 = q0 + length
    keys = np.stack([cond, q1], axis=1)
    uniq, sub_of = np.unique(keys, axis=0, return_inverse=True)
    sub_of = sub_of.ravel()
    start = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(start, sub_of, q0)
    n_bins_sub = uniq[:, 1] - start
    shift = first - q0  # align origin (bins) of each trial
    own_lo = first * f - sm.lead
    own_hi = (first + length) * f - 1 + sm.center
    lo = np.maximum(own_lo, run_lo)
    hi = np.minimum(own_hi, run_hi - 1)
    base = (start[sub_of] + shift) * f - sm.lead  # each trial in its subgroup's frame
    for c in np.unique(cond):  # counts: every trial covers its own bins only
        rows = np.flatnonzero(cond == c)
        lo_c = spans[c][0]
        for t in rows:
            counts[c][q0[t] - lo_c : q1[t] - lo_c, cols] += 1
    for n_bins in np.unique(n_bins_sub):
        subs = np.flatnonzero(n_bins_sub == n_bins)
        width = int(n_bins) * f + k - 1
        per_chunk = max(1, _CHUNK_CELLS // (width * sm.group.n_units))
        for s0 in range(0, len(subs), per_chunk):
            chunk = subs[s0 : s0 + per_chunk]
            local = np.full(len(uniq), -1)
            local[chunk] = np.arange(len(chunk))
            members = np.flatnonzero(local[sub_of] >= 0)
            hist = sm.histograms(
                base[members], lo[members], hi[members], local[sub_of[members]], len(chunk), width
            )
            out = np.matmul(sm.matrix(int(n_bins)), hist)
            for li, s in enumerate(chunk):
                c, qq1 = int(uniq[s, 0]), int(uniq[s, 1])
                a = start[s] - spans[c][0]
                sums[c][a : qq1 - spans[c][0], cols] += out[li]
    # leak of late-starting trials into the bins before their start
    late = np.flatnonzero(q0 > start[sub_of])
    if len(late) == 0:
        return
    e = sm.reach
    leak_mat = sm.matrix(e)[
        :, e * f :
    ]  # (e, K - 1): first K - 1 ms of a window -> e bins before it
    per_chunk = max(1, _CHUNK_CELLS // ((k - 1) * sm.group.n_units))
    for s0 in range(0, len(late), per_chunk):
        t = late[s0 : s0 + per_chunk]
        b = own_lo[t]
        hist = sm.histograms(
            b, np.maximum(lo[t], b), np.minimum(hi[t], b + k - 2), np.arange(len(t)), len(t), k - 1
        )
        leak = np.matmul(leak_mat, hist)  # (n, e, units)
        for i, tt in enumerate(t.tolist()):
            c = int(cond[tt])
            first_bin = max(int(q0[tt]) - e, int(start[sub_of[tt]]))
            a = first_bin - spans[c][0]
            z = int(q0[tt]) - spans[c][0]
            sums[c][a:z, cols] -= leak[i, e - (z - a) :]


def make_psth(
    rec: Recording,
    spec: PsthSpec,
    bin_ms: int,
    train_mask: np.ndarray,
    eval_mask: np.ndarray,
    ignore_mask: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """PSTHs (condition, time, heldin + heldout) and per-condition train/eval trial indices.

    Conditions are the sorted unique combinations of ``spec.cond_fields`` over the trials
    not ignored; trials shorter than 80% of their condition's mean are dropped and each
    PSTH is cut to its shortest trial, then NaN-padded to a common length (nlb_tools).
    """
    trials = rec.trials
    fields = np.stack([trials.values(f) for f in spec.cond_fields], axis=1)
    skip = np.zeros(len(trials), dtype=bool)
    if spec.skip_outliers:
        skip = trials.values("is_outlier") == 1
    usable = ~ignore_mask & ~np.isnan(fields).any(axis=1)
    combos = sorted({tuple(row) for row in fields[usable].tolist()})
    n_bins_total = -(-rec.n_ms // bin_ms)
    align_field = spec.window.align_field or "start_time"
    has_align = trials[align_field] != np.iinfo(np.int64).min
    train_rows = np.flatnonzero(train_mask & has_align)
    eval_rows = np.flatnonzero(eval_mask & has_align)

    # Per condition: kept trials and their windows
    cond_trials = []
    for combo in combos:
        in_cond = np.all(fields == np.array(combo), axis=1)
        sel = in_cond & ~ignore_mask & ~skip
        if not sel.any():
            continue
        win = trial_windows(rec, sel, spec.window, bin_ms, n_bins_total)
        nonempty = win.length > 0
        if not nonempty.any():
            continue
        lengths = win.length[nonempty]
        keep = np.flatnonzero(nonempty)[lengths >= 0.8 * lengths.mean()]
        cond_trials.append(
            (
                win.rows[keep],
                win.first[keep],
                win.length[keep],
                win.first[keep] - win.align_bin[keep],
            )
        )

    kernel = gaussian_kernel(spec.kern_sd_ms)
    groups = [g for g in (rec.heldin, rec.heldout) if g is not None]
    n_units = sum(g.n_units for g in groups)
    # accumulators per condition over its align-bin span
    spans = []
    for _, _, length, q0 in cond_trials:
        spans.append((int(q0.min()), int((q0 + length).max())))
    sums = [np.zeros((hi - lo, n_units)) for lo, hi in spans]
    counts = [np.zeros((hi - lo, n_units)) for lo, hi in spans]
    covered = [np.zeros(hi - lo, dtype=bool) for lo, hi in spans]
    for c, (_, _, length, q0) in enumerate(cond_trials):
        for q, n in zip(q0 - spans[c][0], length, strict=True):
            covered[c][q : q + n] = True

    def flat(i: int) -> np.ndarray:
        return np.concatenate([t[i] for t in cond_trials]) if cond_trials else np.zeros(0, int)

    cond_of = np.repeat(np.arange(len(cond_trials)), [len(t[0]) for t in cond_trials])
    first, length, q0 = flat(1), flat(2), flat(3)
    col = 0
    for group in groups:
        smoother = _GroupSmoother(group, rec.n_ms, kernel, bin_ms)
        cols = slice(col, col + group.n_units)
        col += group.n_units
        clean, run_lo, run_hi = smoother.classify(first, length)
        idx = np.flatnonzero(clean)
        if len(idx):
            _clean_sums(
                smoother,
                cols,
                cond_of[idx],
                first[idx],
                length[idx],
                q0[idx],
                run_lo[idx],
                run_hi[idx],
                spans,
                sums,
                counts,
            )
        # windows touching missing data: one by one, NaN-aware
        for t in np.flatnonzero(~clean):
            c = cond_of[t]
            vals = smoother.exact(int(first[t]), int(length[t]))
            q = q0[t] - spans[c][0]
            ok = ~np.isnan(vals)
            sums[c][q : q + length[t], cols] += np.where(ok, vals, 0.0)
            counts[c][q : q + length[t], cols] += ok

    psths = []
    train_ids, eval_ids = [], []
    for c, (rows, _, length, _) in enumerate(cond_trials):
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums[c] / counts[c]
        mean[counts[c] == 0] = np.nan
        mean = mean[covered[c]]
        min_len = int(length.min())
        psths.append(mean[:min_len] if spec.pad == "back" else mean[-min_len:])
        train_ids.append(np.flatnonzero(np.isin(train_rows, rows)))
        eval_ids.append(np.flatnonzero(np.isin(eval_rows, rows)))

    if spec.seg_len_ms is None:
        max_len = max((p.shape[0] for p in psths), default=0)
    else:
        max_len = round(spec.seg_len_ms / bin_ms)
    stacked = []
    for p in psths:
        if p.shape[0] == max_len:
            stacked.append(p)
        elif p.shape[0] > max_len:
            stacked.append(p[:max_len] if spec.pad == "back" else p[max_len:])
        else:
            fill = np.full((max_len - p.shape[0], p.shape[1]), np.nan)
            stacked.append(np.concatenate([p, fill] if spec.pad == "back" else [fill, p]))
    psth = np.stack(stacked) if stacked else np.zeros((0, max_len, n_units))
    return train_ids, eval_ids, psth
