"""Constant mean-rate model: each neuron's mean train count per bin, everywhere.

A floor for sanity checks: its co-bps is about 0 (the official null model is each held-out
neuron's mean over the *eval* spikes, which this approximates from the train trials).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from nlbsuite.adapter import ModelAdapter, ModelInfo
from nlbsuite.data import PhaseData, Rates


class MeanRate(ModelAdapter):
    """Predicts every neuron's mean train firing rate in every bin."""

    info = ModelInfo(name="mean_rate", description="constant per-neuron mean rate (a floor)")
    presets: ClassVar = {"smoke": {}, "cpu": {}, "paper": {}}

    def fit(self, data: PhaseData) -> None:
        full = data.train_spikes_full()
        self._mean = np.maximum(full.mean(axis=(0, 1)), 1e-9)  # (neuron,)

    def predict(self, data: PhaseData) -> Rates:
        def const(n_trials: int, n_bins: int) -> np.ndarray:
            return np.broadcast_to(self._mean, (n_trials, n_bins, self._mean.size)).copy()

        n_time = data.n_bins + data.n_forward
        return Rates.from_full(
            const(data.train_spikes_heldin.shape[0], data.n_bins),
            const(data.eval_spikes_heldin.shape[0], n_time),
            data.n_heldin,
            data.n_bins,
        )

    def n_parameters(self) -> int:
        return int(self._mean.size) if hasattr(self, "_mean") else 0
