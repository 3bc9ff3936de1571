"""Bootstrap confidence intervals over eval trials.

Replicates resample the eval trials with replacement; as integer trial weights they are
scored by the same per-trial statistics as the official number (:mod:`nlbsuite.scoring.stats`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy.special import ndtri


def bootstrap_weights(n_trials: int, n_boot: int, seed: int) -> np.ndarray:
    """(replicate, trial) counts of trials drawn with replacement, seeded."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_trials, size=(n_boot, n_trials))
    flat = (np.arange(n_boot)[:, None] * n_trials + draws).ravel()
    return (
        np.bincount(flat, minlength=n_boot * n_trials).reshape(n_boot, n_trials).astype(np.float64)
    )


def intervals(
    scorers: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    metrics: Mapping[str, float],
    n_trials: int,
    n_boot: int,
    seed: int,
    confidence: float,
) -> dict[str, tuple[float, float]]:
    """Efron's standard interval per metric: the estimate ``metrics[name]`` +- z * the
    standard deviation of ``scorers[name]`` over ``n_boot`` seeded resamples of the
    ``n_trials`` eval trials (non-finite replicates left out)."""
    w = bootstrap_weights(n_trials, n_boot, seed)
    z = float(ndtri(0.5 + confidence / 2.0))
    ci: dict[str, tuple[float, float]] = {}
    for name, f in scorers.items():
        vals = f(w)
        vals = vals[np.isfinite(vals)]
        se = float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan
        ci[name] = (metrics[name] - z * se, metrics[name] + z * se)
    return ci
