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

Extras, which never change the official numbers: bootstrap confidence intervals, per-neuron
co-bps, and on synthetic data ``rate R2`` (predicted vs true eval rates), ``ceiling co-bps``
(co-bps of the true rates) and ``co-bps / ceiling``. Inputs are never modified (nlb_tools
overwrites zero rates in place; nlbsuite does not).

The package, one concern per module, each layer importing only those above it:

- :mod:`~nlbsuite.scoring.kernels`: compiled loops (numba), no metric logic;
- :mod:`~nlbsuite.scoring.stats`: per-trial sufficient statistics, scored for any trial
  weights (official number: each eval trial once; bootstrap: resampled trials);
- :mod:`~nlbsuite.scoring.decoding`: ridge decoding for ``vel R2``;
- :mod:`~nlbsuite.scoring.metrics`: pure metric functions on plain arrays;
- :mod:`~nlbsuite.scoring.bootstrap`: resampling weights and intervals;
- :mod:`~nlbsuite.scoring.scores`: which metrics a key's target supports, :class:`Scores`;
- :mod:`~nlbsuite.scoring.rules`: the submission rules (errors and warnings);
- :mod:`~nlbsuite.scoring.h5io`: reading nlb_tools' h5 layouts;
- :mod:`~nlbsuite.scoring.evaluator`: :class:`Evaluator` (one dataset key) and
  :func:`evaluate` / :func:`score_phase` (the runner's path);
- :mod:`~nlbsuite.scoring.files`: :func:`score_by_key` / :func:`score_submission` (whole
  files or dicts).

The names below are importable from here; they load their module on first use, so
``import nlbsuite.scoring.rules`` does not pay for numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from nlbsuite.scoring.evaluator import Evaluator, evaluate, score_phase
    from nlbsuite.scoring.files import score_by_key, score_submission
    from nlbsuite.scoring.metrics import (
        bits_per_spike,
        bits_per_spike_per_neuron,
        psth_r2,
        r2_score,
        speed_tp_correlation,
    )
    from nlbsuite.scoring.scores import Scores

_LAZY = {
    "Evaluator": "evaluator",
    "evaluate": "evaluator",
    "score_phase": "evaluator",
    "score_by_key": "files",
    "score_submission": "files",
    "Scores": "scores",
    "bits_per_spike": "metrics",
    "bits_per_spike_per_neuron": "metrics",
    "psth_r2": "metrics",
    "r2_score": "metrics",
    "speed_tp_correlation": "metrics",
}

__all__ = [
    "Evaluator",
    "Scores",
    "bits_per_spike",
    "bits_per_spike_per_neuron",
    "evaluate",
    "psth_r2",
    "r2_score",
    "score_by_key",
    "score_phase",
    "score_submission",
    "speed_tp_correlation",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"nlbsuite.scoring.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nlbsuite.scoring' has no attribute {name!r}")
