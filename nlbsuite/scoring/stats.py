"""Per-trial sufficient statistics: the engine behind every metric.

Each statistic is built once from a prediction and its target (one compiled pass over the
arrays, :mod:`nlbsuite.scoring.kernels`) and scores trial weights:
``score(w: (replicate, eval trial)) -> (replicate,)``. Weights of ones give the official
number; bootstrap replicates are integer weights (trials drawn with replacement), so one
code path gives both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nlbsuite.errors import UserError, require
from nlbsuite.scoring import kernels

# nlb_tools' floor for zero rates.
ZERO_RATE = 1e-9
LOG_ZERO_RATE = float(np.log(ZERO_RATE))


def check_rates(values: np.ndarray, what: str) -> None:
    lowest = values.min() if values.size else 0.0  # NaN if any value is NaN
    if np.isnan(lowest):
        raise UserError(f"{what}: NaN rate predictions inside the scored window")
    if lowest < 0:
        raise UserError(f"{what}: negative rate predictions (rates must be >= 0)")


def _kernel_array(values: np.ndarray) -> np.ndarray:
    """``values`` as the compiled kernels take them: C-contiguous float32 or float64 (other
    dtypes, e.g. integer counts or float16, as float64); no copy when already so."""
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    return np.ascontiguousarray(values)


def _rate_pair(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One or two kernel rate arrays (trial, time, neuron_i), whose neurons together make
    the rates, as the kernels' (heldin, heldout) pair: a lone array gets a 0-neuron partner."""
    require(len(parts) in (1, 2), "expected one or two eval rate arrays")
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[0][:, :, :0])


def r2_from_sums(ss_res: np.ndarray, ss_tot: np.ndarray) -> np.ndarray:
    """R2 per output with scikit-learn's ``force_finite`` rules."""
    out = np.ones(np.broadcast_shapes(ss_res.shape, ss_tot.shape))
    nonzero_num, nonzero_den = ss_res != 0, ss_tot != 0
    valid = nonzero_num & nonzero_den
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ss_res / np.where(nonzero_den, ss_tot, 1.0)
    out = np.where(valid, 1.0 - ratio, out)
    return np.where(nonzero_num & ~nonzero_den, 0.0, out)


def _mean_r2(
    ss_res: np.ndarray,
    sum_y: np.ndarray,
    sum_yy: np.ndarray,
    rows: np.ndarray,
    constant: np.ndarray,
) -> np.ndarray:
    """(replicate,) R2 averaged over outputs from pooled sums, each (replicate, output)
    except ``rows`` (replicate,): residual and centred sums of squares, sums of the centred
    truth and sample counts; ``constant`` (output,) marks truth that never varies."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ss_tot = sum_yy - sum_y**2 / rows[:, None]
    ss_tot = np.where(constant, 0.0, ss_tot)
    return r2_from_sums(ss_res, ss_tot).mean(axis=1)


def _sum_by_trial(values: np.ndarray, row_trial: np.ndarray, n_trials: int) -> np.ndarray:
    """Sum rows of ``values`` (row, ...) per trial; ``row_trial`` is sorted: (trial, ...)."""
    out = np.zeros((n_trials, *values.shape[1:]))
    if len(values):
        starts = np.flatnonzero(np.r_[True, row_trial[1:] != row_trial[:-1]])
        out[row_trial[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


@dataclass
class BitsPerSpike:
    """Per (trial, neuron): model NLL without the log(n!) term (it cancels), spike sum and
    number of scored bins."""

    model: np.ndarray
    spikes: np.ndarray
    bins: np.ndarray

    @classmethod
    def build(cls, rates: np.ndarray, spikes: np.ndarray, what: str) -> BitsPerSpike:
        """``rates``, ``spikes``: (trial, time, neuron) (2-d: one bin per row), any float
        dtype; NaN spikes mark unscored bins, where rates may be anything.

        One compiled pass (:func:`kernels.poisson_sums`) over float32 or float64 input as it
        comes: no float64 copy is made, and the log is taken inside the pass.
        """
        rates, spikes = np.asarray(rates), np.asarray(spikes)
        require(
            rates.shape == spikes.shape,
            f"{what}: shape {rates.shape} does not match the spikes' shape {spikes.shape}",
        )
        require(spikes.ndim >= 2, f"{what}: expected (trial, time, neuron), got {spikes.shape}")
        shape = (len(spikes), -1, spikes.shape[-1])
        rates = _kernel_array(rates).reshape(shape)
        spikes = _kernel_array(spikes).reshape(shape)
        n_trials, _, n_neurons = spikes.shape
        model, counts, bins = (np.empty((n_trials, n_neurons)) for _ in range(3))
        rate_bits = rates.view(np.int32 if rates.dtype == np.float32 else np.int64)
        n_bad = kernels.poisson_sums(
            rates, rate_bits, spikes, ZERO_RATE, LOG_ZERO_RATE, model, counts, bins
        )
        if n_bad:
            check_rates(rates[~np.isnan(spikes)], what)
        return cls(model, counts, bins)

    @classmethod
    def concat(cls, stats: list[BitsPerSpike]) -> BitsPerSpike:
        """Statistics of the neurons of ``stats`` side by side (same trials)."""
        return cls(
            *(
                np.concatenate(arrays, axis=1)
                for arrays in zip(*((s.model, s.spikes, s.bins) for s in stats), strict=True)
            )
        )

    def _nll(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(model NLL, null NLL, spikes), each (replicate, neuron)."""
        model, s, n = w @ self.model, w @ self.spikes, w @ self.bins
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, s / np.where(n > 0, n, 1.0), 0.0)
            m = np.where(mean == 0, ZERO_RATE, mean)
            null = np.where(n > 0, n * m - s * np.log(m), 0.0)
        return model, null, s

    def score(self, w: np.ndarray) -> np.ndarray:
        model, null, s = self._nll(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (null.sum(axis=1) - model.sum(axis=1)) / s.sum(axis=1) / np.log(2)

    def per_neuron(self, w: np.ndarray) -> np.ndarray:
        model, null, s = self._nll(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, (null - model) / s / np.log(2), np.nan)


@dataclass
class R2:
    """Per (trial, output): residual sum of squares, centred sum and sum of squares of the
    truth, and rows per trial; ``constant`` marks outputs whose truth never varies."""

    ss_res: np.ndarray
    sum_y: np.ndarray
    sum_yy: np.ndarray
    rows: np.ndarray
    constant: np.ndarray

    @classmethod
    def build(cls, true: np.ndarray, pred: np.ndarray, row_trial: np.ndarray, n_trials: int) -> R2:
        """``true``, ``pred``: (row, output); ``row_trial``: sorted trial of each row."""
        require(len(true) > 0, "R2 needs at least one sample")
        centred = true - true.mean(axis=0)
        constant = (true == true[0]).all(axis=0)
        return cls(
            _sum_by_trial((true - pred) ** 2, row_trial, n_trials),
            _sum_by_trial(centred, row_trial, n_trials),
            _sum_by_trial(centred**2, row_trial, n_trials),
            _sum_by_trial(np.ones(len(true)), row_trial, n_trials),
            constant,
        )

    def score(self, w: np.ndarray) -> np.ndarray:
        return _mean_r2(
            w @ self.ss_res, w @ self.sum_y, w @ self.sum_yy, w @ self.rows, self.constant
        )


@dataclass
class Psth:
    """Condition-averaged, jitter-aligned eval rates against the true PSTHs.

    Conditions without eval trials are left out. ``parts``: eval rate arrays (trial, time,
    neuron_i) whose neurons are concatenated; ``window``: (condition, time) bins where the
    true PSTH is defined (neuron 0 not NaN); ``truth``: (window bin, neuron) float64, the
    true PSTH at the window bins, condition by condition; ``trials``, ``shifts``: the
    conditions' eval trials one condition after another (``ptr`` delimits them), sorted by
    jitter within a condition, and their jitters in bins (bin t of the average shows a
    trial's bin t - jitter); ``bounds``: (condition, 2) first and one-past-last window bin;
    ``sum_y``, ``sum_yy``, ``rows``: per condition, sums of the centred truth, of its
    squares and the number of window bins; ``constant``: (neuron,) whether the truth never
    varies; ``conditions``: each kept condition's index in ``psth``.
    """

    parts: list[np.ndarray]
    window: np.ndarray
    truth: np.ndarray
    trials: np.ndarray
    shifts: np.ndarray
    ptr: np.ndarray
    bounds: np.ndarray
    sum_y: np.ndarray
    sum_yy: np.ndarray
    rows: np.ndarray
    constant: np.ndarray
    conditions: np.ndarray
    what: str

    @classmethod
    def build(
        cls,
        psth: np.ndarray,
        parts: list[np.ndarray],
        cond_idx: Any,
        jitter: np.ndarray | None,
        what: str,
    ) -> Psth:
        psth = _kernel_array(np.asarray(psth))
        require(len(parts) in (1, 2), "psth: expected one or two eval rate arrays")
        parts = [_kernel_array(p) for p in parts]  # no copy for float32/64 submissions
        n_trials, n_bins = parts[0].shape[:2]
        n_neurons = sum(p.shape[2] for p in parts)
        require(
            psth.ndim == 3 and psth.shape[1:] == (n_bins, n_neurons),
            f"psth: expected shape (condition, {n_bins}, {n_neurons}) to match {what}, "
            f"got {psth.shape}",
        )
        cond_idx = [np.asarray(idx, dtype=np.intp).ravel() for idx in cond_idx]
        require(
            len(cond_idx) == len(psth),
            f"eval_cond_idx: {len(cond_idx)} conditions but psth has {len(psth)}",
        )
        jitter = (
            np.zeros(n_trials, dtype=np.intp) if jitter is None else np.asarray(jitter, np.intp)
        )
        require(
            jitter.shape == (n_trials,),
            f"eval_jitter: expected shape ({n_trials},), got {jitter.shape}",
        )
        kept = np.array([c for c, idx in enumerate(cond_idx) if idx.size], dtype=np.intp)
        require(len(kept) > 0, "eval_cond_idx: no condition has eval trials")
        sizes = np.array([len(cond_idx[c]) for c in kept])
        trials = np.concatenate([cond_idx[c] for c in kept])
        cond_of = np.repeat(np.arange(len(kept)), sizes)
        bad = (trials < 0) | (trials >= n_trials)
        if bad.any():
            raise UserError(
                f"eval_cond_idx[{kept[cond_of[np.argmax(bad)]]}]: trial indices must lie in "
                f"[0, {n_trials})"
            )
        # Within each condition, trials sorted by jitter (stable).
        order = np.lexsort((jitter[trials], cond_of))
        trials = trials[order]
        shifts = jitter[trials]
        ptr = np.zeros(len(kept) + 1, dtype=np.intp)
        ptr[1:] = np.cumsum(sizes)
        window = ~np.isnan(psth[kept, :, 0])
        has_window = window.any(axis=1)
        lo = np.where(has_window, np.argmax(window, axis=1), 0)
        hi = np.where(has_window, n_bins - np.argmax(window[:, ::-1], axis=1), 0)
        # Shifted trials: window bin t shows the trial's bin t - jitter, which must exist.
        outside = has_window[cond_of] & (
            (lo[cond_of] - shifts < 0) | (hi[cond_of] - shifts > n_bins)
        )
        if outside.any():
            k = int(np.argmax(outside))
            raise UserError(
                f"{what}: NaN rate predictions inside the PSTH window of condition "
                f"{kept[cond_of[k]]} (jitter {shifts[k]} shifts bins out of the trial)"
            )
        truth, sum_y, sum_yy, constant = kernels.window_truth(psth, kept, window)
        return cls(
            parts,
            window,
            truth,
            trials,
            shifts,
            ptr,
            np.stack([lo, hi], axis=1).astype(np.intp),
            sum_y,
            sum_yy,
            window.sum(axis=1).astype(np.float64),
            constant,
            kept,
            what,
        )

    def _nan_error(self, c: int) -> UserError:
        """The error for NaN rates in the window of the ``c``-th kept condition."""
        return UserError(
            f"{self.what}: NaN rate predictions inside the PSTH window of condition "
            f"{self.conditions[c]}"
        )

    def _official_residuals(self) -> np.ndarray:
        """(1, neuron) residual sum of squares with each eval trial once, in one compiled
        pass (:func:`kernels.psth_residuals`)."""
        sq_error, has_nan = kernels.psth_residuals(
            *_rate_pair(self.parts),
            self.trials,
            self.shifts,
            self.ptr,
            self.bounds,
            self.window,
            self.truth,
        )
        if has_nan.any():
            raise self._nan_error(int(np.argmax(has_nan)))
        return sq_error.sum(axis=0)[None]

    def _weighted_mean(self, w: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(replicate, window bin, neuron) trial-weighted mean of condition ``c`` and
        (replicate,) whether it has any weight. ``w``: (replicate, eval trial)."""
        window = np.flatnonzero(self.window[c])
        trials = self.trials[self.ptr[c] : self.ptr[c + 1]]
        shifts = self.shifts[self.ptr[c] : self.ptr[c + 1]]
        total = np.zeros(len(w))
        acc = np.zeros((len(w), len(window), sum(p.shape[2] for p in self.parts)))
        values, starts = np.unique(shifts, return_index=True)
        for j, group in zip(values, np.split(trials, starts[1:]), strict=True):
            wg = w[:, group]
            total += wg.sum(axis=1)
            src = window - j
            lo, hi = int(src.min()), int(src.max()) + 1  # contiguous source bins
            col = 0
            for part in self.parts:
                block = part[group, lo:hi]  # (trial, bins, neuron_i)
                summed = (wg @ block.reshape(len(group), -1)).reshape(len(w), hi - lo, -1)
                acc[:, :, col : col + part.shape[2]] += summed[:, src - lo]
                col += part.shape[2]
        present = total > 0
        with np.errstate(invalid="ignore"):
            mean = acc / np.where(present, total, 1.0)[:, None, None]
        if np.isnan(mean[present]).any():
            raise self._nan_error(c)
        return mean, present

    def score(self, w: np.ndarray, block: int = 32) -> np.ndarray:
        return np.concatenate([self._score(w[i : i + block]) for i in range(0, len(w), block)])

    def _score(self, w: np.ndarray) -> np.ndarray:
        n_cond = len(self.ptr) - 1
        if len(w) == 1 and bool(np.all(w == 1.0)):  # the official score: each trial once
            ss_res, included = self._official_residuals(), np.ones((1, n_cond))
        else:
            ss_res = np.zeros((len(w), self.sum_y.shape[1]))
            included = np.zeros((len(w), n_cond))
            row_end = np.cumsum(self.rows).astype(np.intp)  # truth rows of condition c end here
            for c in range(n_cond):
                if not self.window[c].any():
                    included[:, c] = 1.0
                    continue
                mean, present = self._weighted_mean(w, c)
                rows = slice(row_end[c] - int(self.rows[c]), row_end[c])
                res = ((self.truth[rows] - mean) ** 2).sum(axis=1)
                ss_res += np.where(present[:, None], res, 0.0)
                included[:, c] = present
        return _mean_r2(
            ss_res,
            included @ self.sum_y,
            included @ self.sum_yy,
            included @ self.rows,
            self.constant,
        )


@dataclass
class TpCorr:
    """Per eval trial: neural speed, tp and condition (-1: not in any condition)."""

    speed: np.ndarray
    tp: np.ndarray
    cond: np.ndarray
    n_cond: int

    @classmethod
    def build(cls, spikes: np.ndarray, parts: list[np.ndarray], behavior: np.ndarray) -> TpCorr:
        """``spikes``: eval held-out spikes, NaN outside the set-go window; ``parts``: eval
        rate arrays (trial, time, neuron_i) whose neurons together make the rates."""
        behavior = np.asarray(behavior, dtype=np.float64)
        n_trials, n_bins = parts[0].shape[:2]
        mask = ~np.isnan(np.asarray(spikes)[..., 0])  # (trial, time)
        require(
            mask.shape == (n_trials, n_bins),
            f"eval rates ({n_trials}, {n_bins}, ...) do not match eval_spikes_heldout in "
            "trials and bins",
        )
        require(
            behavior.ndim == 2 and len(behavior) == n_trials and behavior.shape[1] >= 4,
            f"eval_behavior: expected shape ({n_trials}, 5) (is_eye, theta, is_short, ts, "
            f"tp), got {behavior.shape}",
        )
        speed = _neural_speed(parts, mask)
        # Conditions: the distinct complete (is_eye, theta, is_short) rows, in sorted order.
        keys = behavior[:, :3]
        complete = np.flatnonzero(~np.isnan(keys).any(axis=1))
        cond = np.full(n_trials, -1, dtype=np.intp)
        order = complete[np.lexsort(keys[complete].T[::-1])]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (keys[order[1:]] != keys[order[:-1]]).any(axis=1)
        cond[order] = np.cumsum(new) - 1
        n_cond = int(new.sum())
        return cls(speed, behavior[:, -1], cond, n_cond)

    def score(self, w: np.ndarray) -> np.ndarray:
        """(replicate,) mean over conditions of the Pearson r between the drawn trials'
        speed and tp; ``w``: (replicate, eval trial) trial weights."""
        member = self.cond[None, :] == np.arange(self.n_cond)[:, None]  # (condition, trial)
        wc = np.where(member[None], w[:, None, :].astype(np.float64), 0.0)  # (rep, cond, trial)
        drawn = wc > 0
        total = wc.sum(axis=2)
        x, y = self.speed, self.tp
        with np.errstate(divide="ignore", invalid="ignore"):
            mx = np.where(drawn, wc * x, 0.0).sum(axis=2) / total
            my = np.where(drawn, wc * y, 0.0).sum(axis=2) / total
            dx, dy = x - mx[..., None], y - my[..., None]
            sxy = np.where(drawn, wc * dx * dy, 0.0).sum(axis=2)
            sxx = np.where(drawn, wc * dx**2, 0.0).sum(axis=2)
            syy = np.where(drawn, wc * dy**2, 0.0).sum(axis=2)
            r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
        # scipy: constant inputs (among the drawn trials) give NaN; so do < 2 trials.
        constant = _constant_among(x, drawn) | _constant_among(y, drawn)
        r = np.where(constant | (drawn.sum(axis=2) < 2), np.nan, r)
        present = total > 0
        with np.errstate(invalid="ignore"):
            return np.where(present, r, 0.0).sum(axis=1) / present.sum(axis=1)


def _neural_speed(parts: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """(trial,) mean norm of the rate steps between consecutive kept bins (nlb_tools'
    ``compute_speed``); NaN for trials with fewer than 2 kept bins.

    ``parts``: one or two rate arrays (trial, time, neuron_i) whose neurons together make
    the rates; ``mask``: (trial, time) kept bins (the set-go window).
    """
    heldin, heldout = _rate_pair([_kernel_array(p) for p in parts])
    return kernels.neural_speed(heldin, heldout, np.ascontiguousarray(mask))


def _constant_among(values: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Whether ``values`` (trial,) are all equal over the drawn trials: ``drawn`` (..., trial)."""
    hi = np.where(drawn, values, -np.inf).max(axis=-1)
    lo = np.where(drawn, values, np.inf).min(axis=-1)
    return hi == lo

