"""Scoring predicted rates exactly as nlb_tools 0.0.4's ``evaluate`` does, faster, plus extras.

Official metrics (nlb_tools' names and definitions):

- ``co-bps``: bits per spike of the held-out eval rates over a null model that predicts
  each neuron's mean count over the eval spikes; NaN spike bins are left out.
- ``fp-bps``: the same over the forward windows, held-in and held-out neurons together.
- ``vel R2``: ridge decoding of behaviour from all rates (held-in + held-out); alpha chosen
  by 5-fold unshuffled cross-validation over ``logspace(-4, 0, 9)`` on the train trials
  (scikit-learn's ``GridSearchCV(Ridge())``), R2 on the eval trials averaged over outputs,
  one decoder per decode mask (Area2_Bump), averaged over masks.
- ``psth R2``: scikit-learn ``r2_score`` of condition-averaged (jitter-aligned) eval rates
  against the true PSTHs, averaged over neurons.
- ``tp corr``: per-condition Pearson r between neural speed (set-go window) and the
  produced interval tp, averaged over conditions (DMFC_RSG).

Every metric is computed from per-trial sufficient statistics, so one code path gives the
official number (each eval trial once) and bootstrap replicates (eval trials resampled with
replacement, i.e. integer trial weights). The ridge cross-validation solves all 5 folds x 9
alphas from per-fold Gram matrices (one eigendecomposition per fold) instead of 45 fits.

Extras, which never change the official numbers: bootstrap confidence intervals, per-neuron
co-bps, and on synthetic data ``rate R2`` (predicted vs true eval rates), ``ceiling co-bps``
(co-bps of the true rates) and ``co-bps / ceiling``.

Entry points: :func:`evaluate` / :func:`score_phase` (a :class:`PhaseData` and
:class:`Rates`), :class:`Evaluator` (one dataset key, nlb_tools-layout groups) and
:func:`score_submission` / :func:`score_by_key` (whole submission and target files or dicts).
Inputs are never modified (nlb_tools overwrites zero rates in place; nlbsuite does not).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy.special import gammaln, ndtri

from nlbsuite import kernels
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError, require
from nlbsuite.h5read import read_dataset


@dataclass(frozen=True)
class MetricInfo:
    """How to read a metric: its direction decides what `compare` calls a regression."""

    name: str
    higher_is_better: bool = True
    official: bool = True
    description: str = ""
    ranked: bool = True  # False: a property of the data (the ceiling), not of the model


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("co-bps", description="co-smoothing bits per spike on held-out neurons"),
        MetricInfo("vel R2", description="ridge-decoded velocity R2 from all rates"),
        MetricInfo("psth R2", description="condition-averaged rate R2 against true PSTHs"),
        MetricInfo("fp-bps", description="forward-prediction bits per spike"),
        # NLB'21 reports tp corr with "lower is better": neural speed should fall as the
        # produced interval grows, so a stronger (more negative) correlation is better.
        MetricInfo(
            "tp corr",
            higher_is_better=False,
            description="per-condition corr. of neural speed with tp (more negative is better)",
        ),
        MetricInfo("rate R2", official=False, description="R2 of predicted vs true rates"),
        MetricInfo(
            "ceiling co-bps", official=False, ranked=False, description="co-bps of the true rates"
        ),
        MetricInfo("co-bps / ceiling", official=False, description="co-bps over the ceiling"),
    ]
}

# nlb_tools' constants.
ALPHAS = np.logspace(-4, 0, 9)
N_FOLDS = 5
ZERO_RATE = 1e-9
LOG_ZERO_RATE = float(np.log(ZERO_RATE))
NLB_ORDER = (
    "mc_maze",
    "mc_rtt",
    "area2_bump",
    "dmfc_rsg",
    "mc_maze_large",
    "mc_maze_medium",
    "mc_maze_small",
)
SCALING_PREFIX = {"mc_maze_large": "[500]", "mc_maze_medium": "[250]", "mc_maze_small": "[100]"}
OTHER_DATASETS = ("lorenz", "lorenz_tiny")


@dataclass(frozen=True)
class NLBShape:
    """Fixed sizes of an NLB dataset: neurons and bins at 5 ms (bins scale with 5/bin)."""

    n_heldin: int
    n_heldout: int
    n_bins_5ms: int
    n_forward_5ms: int = 40

    def bins(self, bin_width_ms: int) -> tuple[int, int]:
        """(bins per trial, forward bins) at ``bin_width_ms``."""
        return self.n_bins_5ms * 5 // bin_width_ms, self.n_forward_5ms * 5 // bin_width_ms


# As in nlb_tools' AutoLFADS configs (DATA_DIM, CS_DIM = held-out, SEQ_LEN = bins + 40).
NLB_SHAPES: dict[str, NLBShape] = {
    "mc_maze": NLBShape(137, 45, 140),
    "mc_rtt": NLBShape(98, 32, 120),
    "area2_bump": NLBShape(49, 16, 120),
    "dmfc_rsg": NLBShape(45, 15, 300),
    "mc_maze_large": NLBShape(122, 40, 140),
    "mc_maze_medium": NLBShape(114, 38, 140),
    "mc_maze_small": NLBShape(107, 35, 140),
}

SUBMISSION_KEYS = (
    "train_rates_heldin",
    "train_rates_heldout",
    "eval_rates_heldin",
    "eval_rates_heldout",
    "eval_rates_heldin_forward",
    "eval_rates_heldout_forward",
)


@cache
def parse_dataset_key(key: str) -> tuple[str, int]:
    """``mc_maze_20`` -> (``mc_maze``, 20); ``mc_maze_small`` -> (``mc_maze_small``, 5).

    Raises :class:`UserError` for keys of no known dataset.
    """
    for name in sorted((*NLB_ORDER, *OTHER_DATASETS), key=len, reverse=True):
        if key == name:
            return name, 5
        m = re.fullmatch(re.escape(name) + r"_(\d+)", key)
        if m:
            return name, int(m.group(1))
    valid = [k for d in (*NLB_ORDER, *OTHER_DATASETS) for k in (d, f"{d}_20")]
    raise UserError(f"unknown dataset key '{key}': expected one of {', '.join(valid)}")


# ----------------------------------------------------------------------------------------
# Pure metric functions
# ----------------------------------------------------------------------------------------


def poisson_nll(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Total Poisson negative log-likelihood, skipping bins where ``spikes`` is NaN.

    Zero rates count as 1e-9 (as nlb_tools, without changing the caller's array).
    Shapes: any, equal; typically (trial, time, neuron).
    """
    rates, spikes = np.asarray(rates, dtype=np.float64), np.asarray(spikes, dtype=np.float64)
    require(
        rates.shape == spikes.shape,
        f"rates shape {rates.shape} does not match spikes shape {spikes.shape}",
    )
    keep = ~np.isnan(spikes)
    r, s = rates[keep], spikes[keep]
    _check_rates(r, "rate predictions")
    r = np.where(r == 0, ZERO_RATE, r)
    return float(np.sum(r - s * np.log(r) + gammaln(s + 1.0)))


def bits_per_spike(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Bits per spike of ``rates`` over a null model of each neuron's mean count.

    ``rates``, ``spikes``: (trial, time, neuron); NaN spikes are left out. Equals
    ``nlb_tools.evaluation.bits_per_spike``.
    """
    return float(_BitsPerSpike.build(rates, spikes, "rates").score(_ones(spikes))[0])


def bits_per_spike_per_neuron(rates: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Bits per spike of each neuron (last axis) on its own: (neuron,).

    Spike-weighted, these average to :func:`bits_per_spike`: sum(bps_n * spikes_n) /
    sum(spikes_n) equals the population value. NaN for neurons without spikes.
    """
    stat = _BitsPerSpike.build(rates, spikes, "rates")
    return stat.per_neuron(_ones(spikes))[0]


def r2_score(true: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's ``r2_score(true, pred)``: R2 per column, averaged over columns.

    ``true``, ``pred``: (sample, output). A column with zero variance scores 1 if predicted
    exactly, else 0 (``force_finite``).
    """
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    true2, pred2 = true.reshape(len(true), -1), pred.reshape(len(pred), -1)
    stat = _R2.build(true2, pred2, np.zeros(len(true2), dtype=np.intp), 1)
    return float(stat.score(np.ones((1, 1)))[0])


def r2_pooled(pred: np.ndarray, true: np.ndarray) -> float:
    """R2 of ``pred`` against ``true`` per neuron (last axis) over all trials and bins,
    averaged over neurons. Shapes: (trial, time, neuron)."""
    return r2_score(true.reshape(-1, true.shape[-1]), pred.reshape(-1, pred.shape[-1]))


@dataclass
class RidgeFit:
    """A ridge decoder chosen as ``GridSearchCV(Ridge(), {"alpha": ALPHAS})`` chooses it.

    ``coef``: (feature, output); ``intercept``: (output,); ``cv_scores``: mean R2 over
    the folds for each alpha; ``x_center``: the feature shift used inside the solver.
    """

    alpha: float
    coef: np.ndarray
    intercept: np.ndarray
    cv_scores: np.ndarray
    x_center: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for ``x``: (sample, feature) -> (sample, output)."""
        return (np.asarray(x, dtype=np.float64) - self.x_center) @ self.coef + self.intercept


def ridge_cv(
    x: np.ndarray | _Rows, y: np.ndarray, alphas: np.ndarray = ALPHAS, n_folds: int = N_FOLDS
) -> RidgeFit:
    """Ridge regression with intercept, alpha chosen by unshuffled K-fold CV, refit on all.

    ``x``: (sample, feature); ``y``: (sample, output). Reproduces scikit-learn's
    ``GridSearchCV(Ridge(), {"alpha": alphas})`` (``KFold(n_folds)`` without shuffling, score
    = R2 averaged over outputs, mean over folds, first best alpha). One pass over ``x``
    accumulates per-fold Gram matrices; each fold is then one eigendecomposition for all
    alphas, and the fold scores come from the Gram matrices without predicting.
    """
    rows = x if isinstance(x, _Rows) else _Rows.from_matrix(np.asarray(x))
    y = np.asarray(y, dtype=np.float64)
    n, p, q = rows.n_rows, rows.n_features, y.shape[1]
    require(n >= n_folds, f"velocity decoding needs at least {n_folds} train samples, got {n}")
    sizes = np.full(n_folds, n // n_folds)
    sizes[: n % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])

    # Any shift gives the same fit; one near the mean (the first block's) keeps the Gram
    # matrices well conditioned without an extra pass over x.
    x_center, y_center = None, y.mean(axis=0)
    gram = np.zeros((n_folds, p, p))
    cross = np.zeros((n_folds, p, q))
    sum_x = np.zeros((n_folds, p))
    sum_y = np.zeros((n_folds, q))
    sum_yy = np.zeros((n_folds, q))
    for start, block in rows.blocks():
        if x_center is None:
            x_center = block.mean(axis=0)
        block -= x_center
        stop = start + len(block)
        for f in range(n_folds):
            lo, hi = max(start, bounds[f]), min(stop, bounds[f + 1])
            if lo >= hi:
                continue
            d = block[lo - start : hi - start]
            e = y[lo:hi] - y_center
            gram[f] += d.T @ d
            cross[f] += d.T @ e
            sum_x[f] += d.sum(axis=0)
            sum_y[f] += e.sum(axis=0)
            sum_yy[f] += np.einsum("ij,ij->j", e, e)

    if not (np.isfinite(gram).all() and np.isfinite(cross).all()):
        raise UserError(
            f"{rows.what}: NaN or infinite rate predictions in trials used for velocity decoding"
        )
    totals = (gram.sum(0), cross.sum(0), sum_x.sum(0), sum_y.sum(0))
    alphas = np.asarray(alphas, dtype=np.float64)
    scores = np.empty((n_folds, len(alphas)))
    for f in range(n_folds):
        n_train = n - sizes[f]
        g, c, sx, sy = (
            t - part[f] for t, part in zip(totals, (gram, cross, sum_x, sum_y), strict=True)
        )
        mx, my = sx / n_train, sy / n_train
        gc = g - n_train * np.outer(mx, mx)
        cc = c - n_train * np.outer(mx, my)
        lam, vecs = np.linalg.eigh(gc)
        proj = vecs.T @ cc  # (p, q)
        coefs = vecs @ (proj / (lam[:, None] + alphas[:, None, None]))  # (alpha, p, q)
        icpt = my - mx @ coefs  # (alpha, q), shifted coordinates
        # Residual sum of squares on the held-out fold, expanded over its Gram statistics.
        ss_res = (
            sum_yy[f]
            - 2 * (coefs * cross[f]).sum(axis=1)
            - 2 * icpt * sum_y[f]
            + (coefs * (gram[f] @ coefs)).sum(axis=1)
            + 2 * icpt * (sum_x[f] @ coefs)
            + sizes[f] * icpt**2
        )
        ss_tot = sum_yy[f] - sum_y[f] ** 2 / sizes[f]
        scores[f] = _r2_from_sums(ss_res, np.broadcast_to(ss_tot, ss_res.shape)).mean(axis=1)

    mean_scores = scores.mean(axis=0)
    best = int(np.argmax(np.where(np.isnan(mean_scores), -np.inf, mean_scores)))
    alpha = float(alphas[best])
    g, c, sx, sy = totals
    mx, my = sx / n, sy / n
    gc = g - n * np.outer(mx, mx)
    gc.flat[:: p + 1] += alpha
    coef = np.linalg.solve(gc, c - n * np.outer(mx, my))
    intercept = my - mx @ coef + y_center
    return RidgeFit(alpha, coef, intercept, mean_scores, x_center)


def psth_r2(
    psth: np.ndarray, eval_rates: np.ndarray, eval_cond_idx: Any, jitter: np.ndarray | None = None
) -> float:
    """R2 of condition-averaged eval rates against true PSTHs (nlb_tools' ``eval_psth``).

    ``psth``: (condition, time, neuron), NaN rows (by neuron 0) outside the window;
    ``eval_rates``: (trial, time, neuron); ``eval_cond_idx``: eval-trial indices per
    condition; ``jitter``: (trial,) bins each trial is shifted by before averaging.
    """
    stat = _Psth.build(psth, [np.asarray(eval_rates)], eval_cond_idx, jitter, "eval rates")
    return float(stat.score(np.ones((1, len(eval_rates))))[0])


def speed_tp_correlation(
    eval_spikes_heldout: np.ndarray, eval_rates: np.ndarray, eval_behavior: np.ndarray
) -> float:
    """Mean over conditions of Pearson r between neural speed and tp (DMFC_RSG).

    ``eval_spikes_heldout``: (trial, time, neuron), non-NaN bins of neuron 0 mark the
    set-go window; ``eval_rates``: (trial, time, all neurons); ``eval_behavior``:
    (trial, field) with fields (is_eye, theta, is_short, ts, tp); conditions are the
    unique (is_eye, theta, is_short) rows, NaN rows (outliers) are left out.
    """
    stat = _TpCorr.build(eval_spikes_heldout, [np.asarray(eval_rates)], eval_behavior)
    return float(stat.score(np.ones((1, len(eval_rates))))[0])


# ----------------------------------------------------------------------------------------
# Per-trial sufficient statistics: score(weights (replicate, eval trial)) -> (replicate,)
# ----------------------------------------------------------------------------------------


def _ones(per_trial: np.ndarray) -> np.ndarray:
    return np.ones((1, len(per_trial)))


def _check_rates(values: np.ndarray, what: str) -> None:
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


def _r2_from_sums(ss_res: np.ndarray, ss_tot: np.ndarray) -> np.ndarray:
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
    return _r2_from_sums(ss_res, ss_tot).mean(axis=1)


def _sum_by_trial(values: np.ndarray, row_trial: np.ndarray, n_trials: int) -> np.ndarray:
    """Sum rows of ``values`` (row, ...) per trial; ``row_trial`` is sorted: (trial, ...)."""
    out = np.zeros((n_trials, *values.shape[1:]))
    if len(values):
        starts = np.flatnonzero(np.r_[True, row_trial[1:] != row_trial[:-1]])
        out[row_trial[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


@dataclass
class _BitsPerSpike:
    """Per (trial, neuron): model NLL without the log(n!) term (it cancels), spike sum and
    number of scored bins."""

    model: np.ndarray
    spikes: np.ndarray
    bins: np.ndarray

    @classmethod
    def build(cls, rates: np.ndarray, spikes: np.ndarray, what: str) -> _BitsPerSpike:
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
            _check_rates(rates[~np.isnan(spikes)], what)
        return cls(model, counts, bins)

    @classmethod
    def concat(cls, stats: list[_BitsPerSpike]) -> _BitsPerSpike:
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
class _R2:
    """Per (trial, output): residual sum of squares, centred sum and sum of squares of the
    truth, and rows per trial; ``constant`` marks outputs whose truth never varies."""

    ss_res: np.ndarray
    sum_y: np.ndarray
    sum_yy: np.ndarray
    rows: np.ndarray
    constant: np.ndarray

    @classmethod
    def build(cls, true: np.ndarray, pred: np.ndarray, row_trial: np.ndarray, n_trials: int) -> _R2:
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
class _Psth:
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
    ) -> _Psth:
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
class _TpCorr:
    """Per eval trial: neural speed, tp and condition (-1: not in any condition)."""

    speed: np.ndarray
    tp: np.ndarray
    cond: np.ndarray
    n_cond: int

    @classmethod
    def build(cls, spikes: np.ndarray, parts: list[np.ndarray], behavior: np.ndarray) -> _TpCorr:
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


# ----------------------------------------------------------------------------------------
# Rows of (trial, time, feature) arrays, streamed in float64 blocks (no full copies)
# ----------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """The matrix ``concatenate(parts, axis=2)[trials].reshape(-1, features)[keep]``.

    ``parts``: arrays (trial, time, feature_i) in any float dtype; ``trials``: selected
    trials in order; ``keep``: row mask over the selected trials' rows, or None.
    """

    parts: list[np.ndarray]
    trials: np.ndarray
    keep: np.ndarray | None
    what: str = "rates"
    block_rows: int = 16384

    @classmethod
    def from_matrix(cls, x: np.ndarray) -> _Rows:
        return cls([x[:, None, :]], np.arange(len(x)), None)

    @property
    def n_bins(self) -> int:
        return self.parts[0].shape[1]

    @property
    def n_rows(self) -> int:
        return int(self.keep.sum()) if self.keep is not None else len(self.trials) * self.n_bins

    @property
    def n_features(self) -> int:
        return sum(p.shape[2] for p in self.parts)

    def row_trial(self) -> np.ndarray:
        """Trial (position in ``trials``) of each kept row."""
        rt = np.repeat(np.arange(len(self.trials)), self.n_bins)
        return rt if self.keep is None else rt[self.keep]

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float64 block (row, feature)) in row order; blocks are fresh arrays."""
        t_block = max(1, self.block_rows // self.n_bins)
        contiguous = len(self.trials) == 0 or np.array_equal(
            self.trials, np.arange(self.trials[0], self.trials[0] + len(self.trials))
        )
        row = 0
        for t0 in range(0, len(self.trials), t_block):
            sel = self.trials[t0 : t0 + t_block]
            if contiguous:
                chunks = [p[sel[0] : sel[-1] + 1] for p in self.parts]
            else:
                chunks = [p[sel] for p in self.parts]
            block = np.concatenate(chunks, axis=2, dtype=np.float64).reshape(-1, self.n_features)
            if self.keep is not None:
                block = block[self.keep[t0 * self.n_bins : (t0 + len(sel)) * self.n_bins]]
            yield row, block
            row += len(block)

    def predict(self, fit: RidgeFit) -> np.ndarray:
        """(row, output) predictions; raises for non-finite rates."""
        pred = np.concatenate(
            [fit.predict(b) for _, b in self.blocks()] or [np.zeros((0, fit.coef.shape[1]))]
        )
        if not np.isfinite(pred).all():
            raise UserError(
                f"{self.what}: NaN or infinite rate predictions in trials used for velocity "
                "decoding"
            )
        return pred


def _velocity_stats(
    train_parts: list[np.ndarray],
    train_behavior: np.ndarray,
    train_mask: np.ndarray,
    eval_parts: list[np.ndarray],
    eval_behavior: np.ndarray,
    eval_mask: np.ndarray,
    key: str,
) -> list[_R2]:
    """One :class:`_R2` over eval trials per decode mask (column of the masks)."""
    n_eval = len(eval_parts[0])
    stats = []
    for i in range(train_mask.shape[1]):
        tr_trials, ev_trials = np.flatnonzero(train_mask[:, i]), np.flatnonzero(eval_mask[:, i])
        require(len(ev_trials) > 0, f"eval_decode_mask column {i} selects no eval trial")
        tr_y = train_behavior[tr_trials].reshape(-1, train_behavior.shape[-1])
        ev_y = eval_behavior[ev_trials].reshape(-1, eval_behavior.shape[-1])
        tr_keep = ~np.isnan(tr_y[:, 0])
        ev_keep = ~np.isnan(ev_y[:, 0])
        tr_rows = _Rows(
            train_parts, tr_trials, None if tr_keep.all() else tr_keep, f"{key}/train_rates"
        )
        ev_rows = _Rows(
            eval_parts, ev_trials, None if ev_keep.all() else ev_keep, f"{key}/eval_rates"
        )
        fit = ridge_cv(tr_rows, tr_y[tr_keep])
        pred = ev_rows.predict(fit)
        require(len(pred) > 0, f"eval_behavior: no non-NaN sample for decode mask {i}")
        row_trial = ev_trials[ev_rows.row_trial()]
        stats.append(_R2.build(ev_y[ev_keep], pred, row_trial, n_eval))
    return stats


# ----------------------------------------------------------------------------------------
# Scoring one dataset key
# ----------------------------------------------------------------------------------------


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


def bootstrap_weights(n_trials: int, n_boot: int, seed: int) -> np.ndarray:
    """(replicate, trial) counts of trials drawn with replacement, seeded."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_trials, size=(n_boot, n_trials))
    flat = (np.arange(n_boot)[:, None] * n_trials + draws).ravel()
    return (
        np.bincount(flat, minlength=n_boot * n_trials).reshape(n_boot, n_trials).astype(np.float64)
    )


def _score_arrays(
    dataset: str,
    key: str,
    sub: dict[str, np.ndarray],
    tgt: dict[str, Any],
    *,
    truth: dict[str, np.ndarray] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> Scores:
    """Score checked float arrays of one dataset key (see :meth:`Evaluator.check`)."""
    spikes = tgt["eval_spikes_heldout"]
    n_eval = len(spikes)
    scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    # Kept in their dtype (float32 in files): each metric accumulates in float64 itself.
    eval_parts = [sub[k] for k in ("eval_rates_heldin", "eval_rates_heldout")]

    co = _BitsPerSpike.build(eval_parts[1], spikes, f"{key}/eval_rates_heldout")
    scorers["co-bps"] = co.score
    if dataset == "dmfc_rsg":
        if "eval_behavior" in tgt:
            scorers["tp corr"] = _TpCorr.build(spikes, eval_parts, tgt["eval_behavior"]).score
    elif "train_behavior" in tgt and "eval_behavior" in tgt:
        n_train = len(tgt["train_behavior"])
        train_mask = tgt.get("train_decode_mask", np.ones((n_train, 1), dtype=bool))
        eval_mask = tgt.get("eval_decode_mask", np.ones((n_eval, 1), dtype=bool))
        vel = _velocity_stats(
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
        scorers["psth R2"] = _Psth.build(
            tgt["psth"],
            eval_parts,
            tgt["eval_cond_idx"],
            tgt.get("eval_jitter"),
            f"{key}/eval_rates",
        ).score
    if "eval_rates_heldin_forward" in sub and "eval_spikes_heldin_forward" in tgt:
        fwd = _BitsPerSpike.concat(
            [
                _BitsPerSpike.build(
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
        rate = _R2.build(true_all.reshape(rows.shape), rows, row_trial, n_eval)
        scorers["rate R2"] = rate.score
        ceiling = _BitsPerSpike.build(truth["eval_rates_heldout"], spikes, "true rates")
        scorers["ceiling co-bps"] = ceiling.score

        def ratio(w: np.ndarray) -> np.ndarray:
            c = ceiling.score(w)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(c > 0, co.score(w) / c, np.nan)

        scorers["co-bps / ceiling"] = ratio

    ones = np.ones((1, n_eval))
    metrics = {name: float(f(ones)[0]) for name, f in scorers.items()}
    ci: dict[str, tuple[float, float]] = {}
    if n_boot > 0:
        w = bootstrap_weights(n_eval, n_boot, seed)
        z = float(ndtri(0.5 + confidence / 2.0))
        for name, f in scorers.items():
            vals = f(w)
            vals = vals[np.isfinite(vals)]
            se = float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan
            ci[name] = (metrics[name] - z * se, metrics[name] + z * se)
    return Scores(key, metrics, ci, co.per_neuron(ones)[0], n_boot, confidence)


# ----------------------------------------------------------------------------------------
# Evaluator: one dataset key, nlb_tools-layout submission and target groups
# ----------------------------------------------------------------------------------------


def _read(group: Any, key: str) -> Any:
    """``group[key]`` as an array (h5py datasets read fully, by :func:`read_dataset`: possibly
    a read-only view of the file), or None if absent."""
    if key not in group:
        return None
    item = group[key]
    if isinstance(item, h5py.Dataset):
        return read_dataset(item)
    return item


def _shape(group: Any, key: str) -> tuple[int, ...] | None:
    """Shape of ``group[key]`` without reading it (None if absent)."""
    if key not in group:
        return None
    item = group[key]
    return tuple(item.shape) if hasattr(item, "shape") else np.shape(item)


def _float_array(value: Any, where: str, expected: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise UserError(f"{where}: expected a float array {expected}, got dtype {arr.dtype}")
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        raise UserError(f"{where}: expected shape {expected}, got shape {arr.shape}")
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


# ----------------------------------------------------------------------------------------
# Submission rules: the one rule set that scoring enforces and ``validate`` lists
# ----------------------------------------------------------------------------------------

_DESCRIBE = {
    "train_rates_heldin": "train trials, bins, held-in neurons",
    "train_rates_heldout": "train trials, bins, held-out neurons",
    "eval_rates_heldin": "eval trials, bins, held-in neurons",
    "eval_rates_heldout": "eval trials, bins, held-out neurons",
    "eval_rates_heldin_forward": "eval trials, forward bins, held-in neurons",
    "eval_rates_heldout_forward": "eval trials, forward bins, held-out neurons",
}
_FORWARD = ("eval_rates_heldin_forward", "eval_rates_heldout_forward")
_GROUPS_EXPECTED = "expected groups named by dataset key, e.g. 'mc_maze' or 'mc_maze_20'"


@dataclass(frozen=True)
class Problem:
    """One finding of the submission rules: ``severity`` is "error" (scoring refuses it;
    EvalAI would fail or score it wrongly) or "warning" (scored, but probably not meant).
    ``where``: ``key/array``, a dataset key, or "" for the whole file."""

    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


def first_error(problems: list[Problem], source: str) -> None:
    """Raise the first error of ``problems`` as one line that starts with ``source`` (e.g.
    ``submission path/to/file.h5``); warnings pass."""
    for p in problems:
        if p.severity == "error":
            raise UserError(
                f"{source}: {p.where}: {p.message}" if p.where else f"{source}: {p.message}"
            )


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"


def rate_problems(arr: np.ndarray, where: str) -> list[Problem]:
    """Errors in the values of one numeric rate array: NaN, infinite, negative or all-zero
    rates, with their counts. One min and one max pass when there is none."""
    if arr.size == 0:
        return []
    low, high = arr.min(), arr.max()  # NaN if any value is NaN
    if low >= 0 and 0 < high < np.inf:
        return []
    out = []
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        out.append(Problem("error", where, f"{n_nan} NaN values (rates must be finite)"))
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        out.append(Problem("error", where, f"{n_inf} infinite values (rates must be finite)"))
    finite = arr[np.isfinite(arr)]
    if finite.size and finite.min() < 0:
        out.append(
            Problem(
                "error",
                where,
                f"{int((finite < 0).sum())} negative rates (min {finite.min():.4g}); "
                "rates must be >= 0",
            )
        )
    if not np.any(arr):
        out.append(Problem("error", where, "all rates are zero"))
    return out


def _silent_neurons(arr: np.ndarray, where: str) -> list[Problem]:
    """A warning for neurons whose rates are zero everywhere. ``arr``: (trial, time, neuron)."""
    if not arr.size or not np.any(arr):
        return []
    silent = int((~np.any(arr.reshape(-1, arr.shape[2]), axis=0)).sum())
    if not silent:
        return []
    return [
        Problem(
            "warning", where, f"{silent} neuron(s) with all-zero rates (scored as 1e-9 per bin)"
        )
    ]


def _consistency_problems(key: str, shapes: dict[str, tuple[int, ...]]) -> list[Problem]:
    """Trials, bins and neuron counts must agree between the arrays of one group."""
    pairs = [
        ("train_rates_heldin", "train_rates_heldout", (0, 1), "trials and bins"),
        ("eval_rates_heldin", "eval_rates_heldout", (0, 1), "trials and bins"),
        ("eval_rates_heldin_forward", "eval_rates_heldout_forward", (0, 1), "trials and bins"),
        ("eval_rates_heldin", "eval_rates_heldin_forward", (0, 2), "trials and neurons"),
        ("eval_rates_heldout", "eval_rates_heldout_forward", (0, 2), "trials and neurons"),
        ("train_rates_heldin", "eval_rates_heldin", (1, 2), "bins and neurons"),
        ("train_rates_heldout", "eval_rates_heldout", (1, 2), "bins and neurons"),
    ]
    out = []
    for a, b, axes, what in pairs:
        if (
            a in shapes
            and b in shapes
            and [shapes[a][i] for i in axes] != [shapes[b][i] for i in axes]
        ):
            out.append(
                Problem(
                    "error",
                    f"{key}/{b}",
                    f"shape {shapes[b]} does not match {a} {shapes[a]} in {what}",
                )
            )
    return out


_H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError)  # h5py's, on damaged content


def _damaged(source: Any, where: str, exc: Exception) -> Problem:
    """A damaged-file error for h5py ``source``; re-raises ``exc`` for in-memory input."""
    if not isinstance(source, h5py.Group):  # h5py.File is a Group
        raise exc
    return Problem("error", where, f"damaged HDF5 content ({exc})")


def tree_problems(tree: Any, target_tree: Any | None = None) -> tuple[list[str], list[Problem]]:
    """The dataset keys of a submission file (or dict) whose groups can be checked, and the
    problems of its layout: no groups, a top-level item that is not a group, an unknown
    dataset key, damaged file content (errors); a key the target file lacks (warning)."""
    try:
        return _tree_problems(tree, target_tree)
    except _H5_ERRORS as exc:
        return [], [_damaged(tree, "", exc)]


def _tree_problems(tree: Any, target_tree: Any | None) -> tuple[list[str], list[Problem]]:
    keys, problems = [], []
    names = list(tree)
    if not names:
        problems.append(Problem("error", "", f"no dataset groups ({_GROUPS_EXPECTED})"))
    for key in names:
        if not isinstance(tree[key], (h5py.Group, Mapping)):
            problems.append(
                Problem("error", key, f"top-level item is not a group ({_GROUPS_EXPECTED})")
            )
            continue
        try:
            parse_dataset_key(key)
        except UserError as exc:
            problems.append(Problem("error", key, str(exc)))
            continue
        if target_tree is not None and key not in target_tree:
            problems.append(
                Problem("warning", key, "not in the target file; it will not be scored")
            )
        keys.append(key)
    return keys, problems


class Evaluator:
    """Official scorer of one NLB dataset key (``mc_maze``, ``mc_maze_20``, ``dmfc_rsg``, ...).

    Like OGB's evaluators it states what it expects (:attr:`expected_input_format`) and
    checks inputs before scoring, with one-line errors that name the key and the expected
    shape. ``eval(submission, target)`` takes the key's submission group (the six
    ``*_rates_*`` arrays) and target group (nlb_tools' ``eval_target.h5`` content for the
    key), as dicts or h5py groups, and returns :class:`Scores` whose official metrics equal
    nlb_tools' ``evaluate`` for that key.
    """

    def __init__(self, dataset_key: str, dataset: str | None = None):
        """``dataset``: the dataset name, for keys of data outside the NLB/Lorenz names
        (then ``dataset_key`` is not checked)."""
        self.key = dataset_key
        if dataset is None:
            self.dataset, self.bin_width_ms = parse_dataset_key(dataset_key)
        else:
            self.dataset, self.bin_width_ms = dataset, 5

    @property
    def needs_train_rates(self) -> bool:
        """DMFC_RSG is scored without train rates (no velocity decoding)."""
        return self.dataset != "dmfc_rsg"

    @property
    def expected_input_format(self) -> str:
        shape = NLB_SHAPES.get(self.dataset)
        if shape is not None:
            bins, fwd = shape.bins(self.bin_width_ms)
            nin, nout = shape.n_heldin, shape.n_heldout
        else:
            bins, fwd, nin, nout = "n_bins", "n_forward", "n_heldin", "n_heldout"
        lines = [
            f"==== Expected input format of Evaluator('{self.key}')",
            f"submission group '{self.key}' with float arrays (float32 in files), "
            "rates as expected spike counts per bin, >= 0:",
        ]
        if self.needs_train_rates:
            lines += [
                f"  train_rates_heldin   (n_train, {bins}, {nin})",
                f"  train_rates_heldout  (n_train, {bins}, {nout})",
            ]
        lines += [
            f"  eval_rates_heldin    (n_eval, {bins}, {nin})",
            f"  eval_rates_heldout   (n_eval, {bins}, {nout})",
            f"  eval_rates_heldin_forward   (n_eval, {fwd}, {nin})   [for fp-bps]",
            f"  eval_rates_heldout_forward  (n_eval, {fwd}, {nout})   [for fp-bps]",
            f"target group '{self.key}' in nlb_tools' eval_target.h5 layout "
            "(eval_spikes_heldout, train_behavior, eval_behavior, ...); n_train and "
            "n_eval come from it.",
        ]
        return "\n".join(lines)

    @property
    def expected_output_format(self) -> str:
        names = [
            "co-bps",
            "tp corr" if self.dataset == "dmfc_rsg" else "vel R2",
            "psth R2",
            "fp-bps",
        ]
        return (
            f"==== Expected output format of Evaluator('{self.key}')\n"
            f"Scores.metrics: {{{', '.join(repr(n) for n in names)}}} -> float "
            "(those the target supports)"
        )

    def expected_shapes(self, target: Any) -> dict[str, tuple[int, ...]]:
        """Exact submission shapes implied by ``target`` (and the NLB sizes)."""
        spikes = _shape(target, "eval_spikes_heldout")
        require(spikes is not None, f"target '{self.key}': missing key 'eval_spikes_heldout'")
        require(
            len(spikes) == 3,
            f"target '{self.key}/eval_spikes_heldout': expected a (trial, time, neuron) array, "
            f"got shape {spikes}",
        )
        n_eval, n_bins, n_out = spikes
        n_in = n_fwd = None
        fwd, psth = _shape(target, "eval_spikes_heldin_forward"), _shape(target, "psth")
        if fwd is not None and len(fwd) == 3:
            n_fwd, n_in = fwd[1], fwd[2]
        elif psth is not None and len(psth) == 3:
            n_in = psth[2] - n_out
        elif self.dataset in NLB_SHAPES:
            n_in = NLB_SHAPES[self.dataset].n_heldin
        shapes: dict[str, tuple[int, ...]] = {}
        beh = _shape(target, "train_behavior")
        if self.needs_train_rates and beh and "eval_behavior" in target:
            shapes["train_rates_heldout"] = (beh[0], n_bins, n_out)
            if n_in is not None:
                shapes["train_rates_heldin"] = (beh[0], n_bins, n_in)
        shapes["eval_rates_heldout"] = (n_eval, n_bins, n_out)
        if n_in is not None:
            shapes["eval_rates_heldin"] = (n_eval, n_bins, n_in)
        if n_fwd is not None:
            shapes["eval_rates_heldin_forward"] = (n_eval, n_fwd, n_in)
            shapes["eval_rates_heldout_forward"] = (n_eval, n_fwd, n_out)
        return shapes

    def _shapes(self, target: Any | None) -> dict[str, tuple[int | None, ...]]:
        """Expected shapes per array: from ``target`` when given, else from the NLB sizes
        with any trial count (None); empty for data of no fixed size."""
        if target is not None:
            return dict(self.expected_shapes(target))
        shape = NLB_SHAPES.get(self.dataset)
        if shape is None:
            return {}
        bins, fwd = shape.bins(self.bin_width_ms)
        return {
            name: (
                None,
                fwd if name in _FORWARD else bins,
                shape.n_heldin if name.endswith(("heldin", "heldin_forward")) else shape.n_heldout,
            )
            for name in SUBMISSION_KEYS
        }

    def problems(
        self, submission: Any, target: Any | None = None, *, warnings: bool = True
    ) -> tuple[dict[str, np.ndarray], list[Problem]]:
        """The rule set of one submission group (dict or h5py group): the arrays that passed
        (float; integers as float64) and every problem found.

        Errors: a missing required array (train rates are required unless the dataset is
        DMFC_RSG or ``target`` has no behaviour to decode), one forward array without the
        other, an item that is no numeric array, a shape other than (trial, time, neuron) of
        the expected sizes (``target``'s, else the NLB sizes), NaN / infinite / negative /
        all-zero rates, arrays that disagree in trials, bins or neurons. Warnings (only with
        ``warnings``): dtype not float32, no forward arrays, silent neurons, unknown keys,
        DMFC_RSG train rates (ignored). A damaged h5 group is one error.
        """
        try:
            return self._problems(submission, target, warnings)
        except _H5_ERRORS as exc:
            return {}, [_damaged(submission, self.key, exc)]

    def _problems(
        self, submission: Any, target: Any | None, warnings: bool
    ) -> tuple[dict[str, np.ndarray], list[Problem]]:
        try:
            shapes = self._shapes(target)
        except UserError as exc:
            shapes, problems = self._shapes(None), [Problem("error", "", str(exc))]
        else:
            problems = []
        decodes = target is None or ("train_behavior" in target and "eval_behavior" in target)
        required = ["eval_rates_heldin", "eval_rates_heldout"]
        if self.needs_train_rates and decodes:
            required = ["train_rates_heldin", "train_rates_heldout", *required]
        arrays: dict[str, np.ndarray] = {}
        seen: dict[str, tuple[int, ...]] = {}
        for name in SUBMISSION_KEYS:
            where = f"{self.key}/{name}"
            exp = shapes.get(name)
            exp_txt = f"{_fmt(exp)} ({_DESCRIBE[name]})" if exp else f"({_DESCRIBE[name]})"
            if name.startswith("train_") and not self.needs_train_rates:
                if warnings and name in submission:
                    problems.append(
                        Problem(
                            "warning",
                            where,
                            "DMFC_RSG is scored without train rates; this array is ignored",
                        )
                    )
                continue
            if name not in submission:
                other = _FORWARD[1 - _FORWARD.index(name)] if name in _FORWARD else None
                if name in required:
                    problems.append(
                        Problem("error", where, f"missing key; expected shape {exp_txt}")
                    )
                elif other is not None and other in submission:
                    problems.append(
                        Problem(
                            "error", where, f"missing key; {other} is given (give both or neither)"
                        )
                    )
                elif warnings and other is not None:
                    problems.append(Problem("warning", where, "missing key; no fp-bps without it"))
                continue
            item = submission[name]
            if isinstance(item, (h5py.Group, Mapping)):
                problems.append(Problem("error", where, f"is a group; expected an array {exp_txt}"))
                continue
            arr = np.asarray(read_dataset(item) if isinstance(item, h5py.Dataset) else item)
            if arr.dtype.kind not in "fiu":
                problems.append(Problem("error", where, f"dtype {arr.dtype}; expected float32"))
                continue
            if warnings and arr.dtype != np.float32:
                problems.append(
                    Problem(
                        "warning",
                        where,
                        f"dtype {arr.dtype}; EvalAI submissions are float32 (nlb_tools reads "
                        "any number as float64)",
                    )
                )
            if arr.ndim != 3:
                problems.append(Problem("error", where, f"shape {arr.shape}; expected {exp_txt}"))
                continue
            if exp and any(e is not None and e != a for e, a in zip(exp, arr.shape, strict=True)):
                problems.append(Problem("error", where, f"shape {arr.shape}; expected {exp_txt}"))
            seen[name] = arr.shape
            problems += rate_problems(arr, where)
            if warnings:
                problems += _silent_neurons(arr, where)
            arrays[name] = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
        if warnings:
            for name in submission:
                if name not in SUBMISSION_KEYS:
                    problems.append(
                        Problem(
                            "warning",
                            f"{self.key}/{name}",
                            f"unexpected key; the evaluator reads only {', '.join(SUBMISSION_KEYS)}",
                        )
                    )
        problems += _consistency_problems(self.key, seen)
        return arrays, problems

    def check(
        self, submission: Any, target: Any, *, source: str = "submission"
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Read and check both groups; returns (submission arrays, target arrays).

        Raises :class:`UserError` for a bad target group, or for the first error of
        :meth:`problems` as one line ``{source}: {key}/{array}: {what is wrong}``.
        """
        shapes = self.expected_shapes(target)
        sub, problems = self.problems(submission, target, warnings=False)
        first_error(problems, source)

        tgt: dict[str, Any] = {}
        n_eval, n_bins, _ = shapes["eval_rates_heldout"]
        tgt["eval_spikes_heldout"] = _float_array(
            _read(target, "eval_spikes_heldout"),
            f"target '{self.key}/eval_spikes_heldout'",
            "(trial, time, neuron)",
            3,
        )
        for name in ("eval_spikes_heldin_forward", "eval_spikes_heldout_forward", "psth"):
            value = _read(target, name)
            if value is not None:
                tgt[name] = _float_array(value, f"target '{self.key}/{name}'", "3-d", 3)
        for name in ("train_behavior", "eval_behavior"):
            value = _read(target, name)
            if value is not None:
                tgt[name] = _float_array(
                    value, f"target '{self.key}/{name}'", "2-d or 3-d", (2, 3)
                ).astype(np.float64)
        if "eval_behavior" in tgt:
            require(
                len(tgt["eval_behavior"]) == n_eval,
                f"target '{self.key}/eval_behavior': {len(tgt['eval_behavior'])} trials, "
                f"expected {n_eval}",
            )
        if "eval_spikes_heldin_forward" in tgt:
            require(
                "eval_spikes_heldout_forward" in tgt,
                f"target '{self.key}': missing key 'eval_spikes_heldout_forward'",
            )
        if self.dataset != "dmfc_rsg" and "train_behavior" in tgt and "eval_behavior" in tgt:
            for split, n in (("train", len(tgt["train_behavior"])), ("eval", n_eval)):
                mask = _read(target, f"{split}_decode_mask")
                if mask is None:
                    continue
                mask = np.asarray(mask)
                require(
                    mask.ndim == 2 and len(mask) == n and mask.dtype.kind in "biu",
                    f"target '{self.key}/{split}_decode_mask': expected a boolean "
                    f"({n}, n_masks) array, got dtype {mask.dtype} shape {mask.shape}",
                )
                tgt[f"{split}_decode_mask"] = mask.astype(bool)
            if "train_decode_mask" in tgt or "eval_decode_mask" in tgt:
                require(
                    "train_decode_mask" in tgt
                    and "eval_decode_mask" in tgt
                    and tgt["train_decode_mask"].shape[1] == tgt["eval_decode_mask"].shape[1],
                    f"target '{self.key}': train_decode_mask and eval_decode_mask must both "
                    "be present with the same number of masks",
                )
            n_dims = tgt["train_behavior"].shape[-1]
            for split, n in (("train", len(tgt["train_behavior"])), ("eval", n_eval)):
                beh = tgt[f"{split}_behavior"]
                require(
                    beh.shape == (n, n_bins, n_dims),
                    f"target '{self.key}/{split}_behavior': expected shape ({n}, {n_bins}, "
                    f"{n_dims}) (trial, bin, behaviour dim), got {beh.shape}",
                )
        if "psth" in tgt:
            cond = _read(target, "eval_cond_idx")
            require(cond is not None, f"target '{self.key}': 'psth' without 'eval_cond_idx'")
            tgt["eval_cond_idx"] = [np.asarray(c).ravel() for c in cond]
            jitter = _read(target, "eval_jitter")
            if jitter is not None:
                tgt["eval_jitter"] = np.asarray(jitter).astype(np.intp).ravel()
        return sub, tgt

    def eval(
        self,
        submission: Any,
        target: Any,
        *,
        n_boot: int = 0,
        seed: int = 0,
        confidence: float = 0.95,
        source: str = "submission",
    ) -> Scores:
        """Score one key's submission group against its target group (dicts or h5 groups).

        ``n_boot`` > 0 adds bootstrap intervals (eval trials resampled with replacement,
        seeded by ``seed``) at level ``confidence``; see :class:`Scores`. ``source`` starts
        error messages (e.g. ``submission path/to/file.h5``).
        """
        sub, tgt = self.check(submission, target, source=source)
        return _score_arrays(
            self.dataset, self.key, sub, tgt, n_boot=n_boot, seed=seed, confidence=confidence
        )


# ----------------------------------------------------------------------------------------
# Whole files / dicts in nlb_tools' layout
# ----------------------------------------------------------------------------------------


@contextmanager
def open_h5_tree(source: str | Path | Mapping[str, Any], role: str) -> Iterator[Any]:
    """Yield a mapping of dataset key -> group for a file path or an in-memory dict; h5py's
    errors while it is read (damaged or truncated content) become one :class:`UserError`."""
    if isinstance(source, Mapping):
        yield source
        return
    path = Path(source)
    require(path.exists(), f"{role} {path}: file not found")
    require(
        path.is_file() and path.stat().st_size > 0,
        f"{role} {path}: file is empty (expected an HDF5 file)",
    )
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UserError(f"{role} {path}: not an HDF5 file") from None
    try:
        with f:
            yield f
    except (OSError, KeyError, RuntimeError) as exc:  # h5py's errors for damaged content
        raise UserError(f"{role} {path}: damaged HDF5 file ({exc})") from None


def _dataset_keys(tree: Any, role: str) -> list[str]:
    keys = list(tree)
    for k in keys:
        item = tree[k]
        require(
            isinstance(item, (h5py.Group, Mapping)),
            f"{role}: top-level item '{k}' is not a group (expected groups named by "
            "dataset key, e.g. 'mc_maze' or 'mc_maze_20')",
        )
    return keys


def _ordered_keys(keys: list[str]) -> list[str]:
    """nlb_tools' order (dataset, then 5 ms before 20 ms), then other datasets."""
    order = [d + s for d in NLB_ORDER for s in ("", "_20")]
    return [k for k in order if k in keys] + sorted(k for k in keys if k not in order)


def score_by_key(
    target: str | Path | Mapping[str, Any],
    submission: str | Path | Mapping[str, Any],
    *,
    n_boot: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    skipped: list[str] | None = None,
) -> dict[str, Scores]:
    """Score every dataset key of ``submission`` that ``target`` has.

    Both are nlb_tools-layout files (``submission.h5`` and ``eval_target.h5`` /
    ``eval_data_*.h5``) or dicts. Keys in the submission without a target group are left
    out and, if ``skipped`` is a list, appended to it. Raises :class:`UserError` for the
    first error of the submission rules (:func:`tree_problems`, :meth:`Evaluator.problems`:
    what ``nlbsuite validate`` lists) or when no key can be scored.
    """
    label = "submission" if isinstance(submission, Mapping) else f"submission {submission}"
    with ExitStack() as stack:
        sub_tree = stack.enter_context(open_h5_tree(submission, "submission"))
        tgt_tree = stack.enter_context(open_h5_tree(target, "target"))
        tgt_keys = set(_dataset_keys(tgt_tree, "target"))
        sub_keys, problems = tree_problems(sub_tree)
        first_error(problems, label)
        out: dict[str, Scores] = {}
        for k in _ordered_keys(sub_keys):
            if k not in tgt_keys:
                if skipped is not None:
                    skipped.append(k)
                continue
            out[k] = Evaluator(k).eval(
                sub_tree[k],
                tgt_tree[k],
                n_boot=n_boot,
                seed=seed,
                confidence=confidence,
                source=label,
            )
        if not out:
            raise UserError(
                f"nothing to score: submission has {', '.join(sub_keys)}, target has "
                f"{', '.join(sorted(tgt_keys)) or 'no dataset groups'}"
            )
        return out


def score_submission(
    target: str | Path | Mapping[str, Any], submission: str | Path | Mapping[str, Any]
) -> list[dict[str, dict[str, float]]]:
    """Exactly the structure nlb_tools' ``evaluate(target, submission)`` returns.

    ``[{"mc_maze_split": {"co-bps": ..., "vel R2": ..., "psth R2": ..., "fp-bps": ...}},
    ..., {"mc_maze_scaling_split": {"[100] co-bps": ..., ...}}]``; non-NLB keys are left out.
    """
    by_key = score_by_key(target, submission)
    result: list[dict[str, dict[str, float]]] = []
    scaling: dict[str, dict[str, float]] = {"": {}, "_20": {}}
    for k, scores in by_key.items():
        dataset, bin_ms = parse_dataset_key(k)
        if dataset not in NLB_ORDER or bin_ms not in (5, 20):
            continue
        suffix = "" if bin_ms == 5 else "_20"
        official = {m: v for m, v in scores.metrics.items() if METRICS[m].official}
        if dataset in SCALING_PREFIX:
            scaling[suffix].update(
                {f"{SCALING_PREFIX[dataset]} {m}": v for m, v in official.items()}
            )
        else:
            result.append({f"{k}_split": official})
    for suffix in ("", "_20"):
        if scaling[suffix]:
            result.append({f"mc_maze_scaling{suffix}_split": scaling[suffix]})
    return result


# ----------------------------------------------------------------------------------------
# PhaseData + Rates (the runner's path)
# ----------------------------------------------------------------------------------------


def score_phase(
    data: PhaseData, rates: Rates, *, n_boot: int = 0, seed: int = 0, confidence: float = 0.95
) -> Scores:
    """Scores of a model's ``rates`` on ``data``: official metrics the data supports, plus
    ground-truth extras on synthetic data, optionally with bootstrap intervals."""
    require(
        data.target is not None,
        f"{data.key} ({data.phase}): no evaluation target (held-out eval spikes) to score against",
    )
    tgt = data.target.arrays()
    if "eval_behavior" in tgt and "train_behavior" not in tgt and data.train_behavior is not None:
        tgt["train_behavior"] = data.train_behavior
    ev = Evaluator(data.key, dataset=data.dataset)
    ev.bin_width_ms = data.bin_width_ms
    sub_arrays, tgt_arrays = ev.check(rates.arrays(), tgt)
    truth = None
    if data.truth is not None:
        truth = {
            "eval_rates_heldin": data.truth.eval_rates_heldin,
            "eval_rates_heldout": data.truth.eval_rates_heldout,
        }
    return _score_arrays(
        data.dataset,
        data.key,
        sub_arrays,
        tgt_arrays,
        truth=truth,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )


def evaluate(data: PhaseData, rates: Rates, *, n_boot: int = 0, seed: int = 0) -> dict[str, float]:
    """All metrics ``data`` supports for the prediction ``rates`` (flat dict of floats).

    co-bps needs held-out eval spikes (``data.target``); fp-bps forward spikes; vel R2
    train and eval behaviour; psth R2 PSTHs; ground-truth extras ``data.truth``. With
    ``n_boot`` > 0, ``"<metric> ci_lo"`` / ``"<metric> ci_hi"`` bootstrap bounds are added.
    """
    return score_phase(data, rates, n_boot=n_boot, seed=seed).flat()
