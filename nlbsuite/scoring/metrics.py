"""Pure metric functions, exactly as nlb_tools 0.0.4 computes them.

Each takes plain arrays and returns a number; each is the official score of the per-trial
statistics in :mod:`nlbsuite.scoring.stats` with every eval trial counted once. Aliases under
nlb_tools' own names (``eval_psth``) sit at the end, so code written against nlb_tools reads
the same here. Inputs are never modified.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nlbsuite.scoring.stats import R2, BitsPerSpike, Psth, TpCorr


def _ones(per_trial: np.ndarray) -> np.ndarray:
    """Weights (1 replicate, trial) that count each trial once: the official score."""
    return np.ones((1, len(per_trial)))


def bits_per_spike(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Bits per spike of ``rates`` over a null model of each neuron's mean count.

    ``rates``, ``spikes``: (trial, time, neuron); NaN spikes are left out. Equals
    ``nlb_tools.evaluation.bits_per_spike``.
    """
    return float(BitsPerSpike.build(rates, spikes, "rates").score(_ones(spikes))[0])


def bits_per_spike_per_neuron(rates: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Bits per spike of each neuron (last axis) on its own: (neuron,).

    Spike-weighted, these average to :func:`bits_per_spike`: sum(bps_n * spikes_n) /
    sum(spikes_n) equals the population value. NaN for neurons without spikes.
    """
    stat = BitsPerSpike.build(rates, spikes, "rates")
    return stat.per_neuron(_ones(spikes))[0]


def r2_score(true: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's ``r2_score(true, pred)``: R2 per column, averaged over columns.

    ``true``, ``pred``: (sample, output). A column with zero variance scores 1 if predicted
    exactly, else 0 (``force_finite``).
    """
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    true2, pred2 = true.reshape(len(true), -1), pred.reshape(len(pred), -1)
    stat = R2.build(true2, pred2, np.zeros(len(true2), dtype=np.intp), 1)
    return float(stat.score(np.ones((1, 1)))[0])



def psth_r2(
    psth: np.ndarray, eval_rates: np.ndarray, eval_cond_idx: Any, jitter: np.ndarray | None = None
) -> float:
    """R2 of condition-averaged eval rates against true PSTHs (nlb_tools' ``eval_psth``).

    ``psth``: (condition, time, neuron), NaN rows (by neuron 0) outside the window;
    ``eval_rates``: (trial, time, neuron); ``eval_cond_idx``: eval-trial indices per
    condition; ``jitter``: (trial,) bins each trial is shifted by before averaging.
    """
    stat = Psth.build(psth, [np.asarray(eval_rates)], eval_cond_idx, jitter, "eval rates")
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
    stat = TpCorr.build(eval_spikes_heldout, [np.asarray(eval_rates)], eval_behavior)
    return float(stat.score(np.ones((1, len(eval_rates))))[0])



#: nlb_tools' name of :func:`psth_r2` (``nlb_tools.evaluation.eval_psth``).
eval_psth = psth_r2
