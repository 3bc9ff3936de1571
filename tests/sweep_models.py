"""Small models for the sweep and tune tests (imported by Ray workers as
``tests.sweep_models``): a slow one (to kill a sweep mid-way), one that fails for seed 1,
and one that trains in steps (for ASHA and PBT)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from baselines.mean_rate import MeanRate
from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo
from nlbsuite.data import PhaseData, Rates
from nlbsuite.searchspace import LogUniform


@dataclass
class SlowConfig(ModelConfig):
    sleep_s: float = 4.0


class SlowMeanRate(MeanRate):
    """The mean-rate model after ``sleep_s`` seconds of "training"."""

    info = ModelInfo(name="slow_mean")
    config_class = SlowConfig

    def fit(self, data: PhaseData) -> None:
        time.sleep(self.config.sleep_s)
        super().fit(data)


class FlakyMeanRate(MeanRate):
    """The mean-rate model, except that seed 1 raises."""

    info = ModelInfo(name="flaky_mean")

    def fit(self, data: PhaseData) -> None:
        if self.seed == 1:
            raise RuntimeError("flaky_mean: seed 1 always fails")
        super().fit(data)


@dataclass
class StepConfig(ModelConfig):
    lr: float = 0.01
    epochs: int = 4


class StepPSTH(ModelAdapter):
    """Per-(time, neuron) log rate fitted by gradient descent on the train trials' Poisson
    NLL, from rate 1 everywhere: ``lr`` decides how close ``epochs`` steps get."""

    info = ModelInfo(name="step_psth")
    config_class = StepConfig
    presets: ClassVar = {"smoke": {}, "cpu": {}, "paper": {}}
    search_space: ClassVar = {"lr": LogUniform(1e-3, 1.0)}

    def partial_fit(self, data: PhaseData, epochs: int) -> None:
        mean = data.train_spikes_full().mean(axis=0)  # (time + forward, neuron)
        theta = getattr(self, "theta", np.zeros_like(mean))
        for _ in range(epochs):
            theta = theta - self.config.lr * (np.exp(theta) - mean)
        self.theta = theta

    def fit(self, data: PhaseData) -> None:
        self.__dict__.pop("theta", None)
        self.partial_fit(data, self.config.epochs)

    def predict(self, data: PhaseData) -> Rates:
        rate = np.exp(self.theta)
        train = np.broadcast_to(rate[: data.n_bins], (len(data.train_spikes_heldin), data.n_bins, rate.shape[1]))
        full = np.broadcast_to(rate, (len(data.eval_spikes_heldin), *rate.shape))
        return Rates.from_full(train.copy(), full.copy(), data.n_heldin, data.n_bins)


MODELS = {
    "slow_mean": "tests.sweep_models:SlowMeanRate",
    "flaky_mean": "tests.sweep_models:FlakyMeanRate",
    "step_psth": "tests.sweep_models:StepPSTH",
}


def register(monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Make the test models known by name in this process (the driver's registry), beside
    the models registered under the entry point; with ``monkeypatch``, until it is undone."""
    from nlbsuite import registry

    entries = registry.model_entries

    def with_tests() -> dict[str, str]:
        return {**entries(), **MODELS}

    if monkeypatch is not None:
        monkeypatch.setattr(registry, "model_entries", with_tests)
    else:
        registry.model_entries = with_tests
