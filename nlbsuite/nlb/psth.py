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
from scipy import signal

from nlbsuite.nlb.nwb import Recording, SpikeGroup
from nlbsuite.nlb.specs import PsthSpec
from nlbsuite.nlb.tensors import trial_windows

_CHUNK_CELLS = 4_000_000  # histogram cells per batch (float64: 32 MB)


def gaussian_kernel(kern_sd_ms: int) -> np.ndarray:
    """nlb_tools' smoothing kernel at 1 ms: ``gaussian(int(6 sd), sd)``, normalised."""
    window = signal.windows.gaussian(int(6 * kern_sd_ms), kern_sd_ms, sym=True)
    return window / np.sum(window)


def binned_smoothing_matrix(kernel: np.ndarray, bin_ms: int, n_bins: int) -> np.ndarray:
    """(n_bins, n_bins * bin_ms + K - 1) matrix: 1 ms histogram -> smoothed, binned values.

    Column ``v`` is the ms ``first_ms - (K - 1 - (K - 1) // 2) + v`` of the window.
    """
    k = len(kernel)
    mat = np.zeros((n_bins, n_bins * bin_ms + k - 1))
    j = np.arange(n_bins)[:, None]
    taps = np.arange(k)[None, :]
    for r in range(bin_ms):
        mat[j, j * bin_ms + r + k - 1 - taps] += kernel[None, :]
    return mat


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
        if n_bins not in self._mats:
            self._mats[n_bins] = binned_smoothing_matrix(self.kernel, self.bin_ms, n_bins)
        return self._mats[n_bins]

    def classify(self, first: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each window: inside one NaN-free run? and that run's [start, end)."""
        a = first * self.bin_ms
        b = (first + length) * self.bin_ms  # exclusive
        r = np.searchsorted(self.run_start, a, side="right") - 1
        ok = r >= 0
        rc = np.clip(r, 0, None)
        if len(self.run_start) == 0:
            return np.zeros(len(a), bool), a, b
        clean = ok & (a >= self.run_start[rc]) & (b <= self.run_end[rc]) & (b <= self.n_ms)
        return clean, self.run_start[rc], self.run_end[rc]

    def batch_sums(
        self, first: np.ndarray, run_lo: np.ndarray, run_hi: np.ndarray, sub: np.ndarray,
        n_sub: int, n_bins: int,
    ) -> np.ndarray:
        """(n_sub, n_bins, n_units): summed smoothed windows of clean trials by subgroup."""
        n = self.group.n_units
        width = n_bins * self.bin_ms + len(self.kernel) - 1
        base = first * self.bin_ms - self.lead
        lo = np.maximum(base, run_lo)
        hi = np.minimum(base + width - 1, run_hi - 1)
        ms = self.group.spike_ms
        a = np.searchsorted(ms, lo, side="left")
        b = np.searchsorted(ms, hi, side="right")
        counts = np.maximum(b - a, 0)
        total = int(counts.sum())
        trial_of = np.repeat(np.arange(len(first)), counts)
        starts = np.repeat(a - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        spike = np.arange(total) + starts
        key = (sub[trial_of] * width + (ms[spike] - base[trial_of])) * n + self.group.spike_unit[spike]
        hist = np.bincount(key, minlength=n_sub * width * n).astype(np.float64)
        return np.matmul(self.matrix(n_bins), hist.reshape(n_sub, width, n))

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
        sm = self.group.spike_ms
        a = np.searchsorted(sm, lo, side="left")
        b = np.searchsorted(sm, lo + width - 1, side="right")
        np.add.at(x, (sm[a:b] - lo, self.group.spike_unit[a:b]), 1.0)
        smooth = np.full_like(x, np.nan)
        for s, e in zip(*_runs(valid), strict=True):
            full = signal.fftconvolve(x[s:e], self.kernel[:, None], axes=0)
            smooth[s:e] = np.maximum(full[self.center : self.center + (e - s)], 0.0)
        first_local = self.lead + np.arange(n_bins) * f
        cols = first_local[:, None] + np.arange(f)[None, :]
        out = np.nansum(smooth[cols], axis=1)
        out[~valid[first_local]] = np.nan
        return out


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

    col = 0
    for group in groups:
        smoother = _GroupSmoother(group, rec.n_ms, kernel, bin_ms)
        cols = slice(col, col + group.n_units)
        col += group.n_units
        cond_of = np.concatenate([np.full(len(t[0]), c) for c, t in enumerate(cond_trials)]) if cond_trials else np.zeros(0, int)
        first = np.concatenate([t[1] for t in cond_trials]) if cond_trials else np.zeros(0, int)
        length = np.concatenate([t[2] for t in cond_trials]) if cond_trials else np.zeros(0, int)
        q0 = np.concatenate([t[3] for t in cond_trials]) if cond_trials else np.zeros(0, int)
        clean, run_lo, run_hi = smoother.classify(first, length)
        # clean trials: subgroups of equal (condition, q0, length), summed by histogram
        idx = np.flatnonzero(clean)
        if len(idx):
            keys = np.stack([length[idx], cond_of[idx], q0[idx]], axis=1)
            uniq, sub_of = np.unique(keys, axis=0, return_inverse=True)
            sub_of = sub_of.ravel()
            n_in_sub = np.bincount(sub_of, minlength=len(uniq))
            for n_bins in np.unique(uniq[:, 0]):
                subs = np.flatnonzero(uniq[:, 0] == n_bins)
                width = int(n_bins) * bin_ms + len(kernel) - 1
                per_chunk = max(1, _CHUNK_CELLS // (width * group.n_units))
                for s0 in range(0, len(subs), per_chunk):
                    chunk = subs[s0 : s0 + per_chunk]
                    local = np.full(len(uniq), -1)
                    local[chunk] = np.arange(len(chunk))
                    members = idx[local[sub_of] >= 0]
                    msub = local[sub_of[local[sub_of] >= 0]]
                    out = smoother.batch_sums(
                        first[members], run_lo[members], run_hi[members], msub, len(chunk), int(n_bins)
                    )
                    for li, s in enumerate(chunk):
                        _, c, qq = uniq[s]
                        q = qq - spans[c][0]
                        sums[c][q : q + n_bins, cols] += out[li]
                        counts[c][q : q + n_bins, cols] += n_in_sub[s]
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
        max_len = int(round(spec.seg_len_ms / bin_ms))
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
