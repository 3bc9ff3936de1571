"""check_adapter: passes a well-behaved adapter and fails, naming the check, on each defect."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo
from nlbsuite.data import PhaseData, Rates
from nlbsuite.testing import AdapterCheckError, check_adapter


@dataclass
class GoodConfig(ModelConfig):
    scale: float = 1.0
    sizes: tuple[int, ...] = (3, 2)


class Good(ModelAdapter):
    """Per-neuron mean rate times ``scale``, plus seeded noise (so it is stochastic)."""

    info = ModelInfo(name="good", stochastic=True)
    config_class = GoodConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"scale": 1.0},
        "cpu": {},
        "paper": {"sizes": (4,)},
    }

    def fit(self, data: PhaseData) -> None:
        rng = np.random.default_rng(self.seed)
        mean = data.train_spikes_full().mean(axis=(0, 1)) + 1e-3
        self.rate = mean * self.config.scale * rng.uniform(0.9, 1.1, size=mean.shape)

    def predict(self, data: PhaseData) -> Rates:
        n_total = data.n_bins + data.n_forward
        train = np.tile(self.rate, (len(data.train_spikes_heldin), n_total, 1))
        evals = np.tile(self.rate, (len(data.eval_spikes_heldin), n_total, 1))
        return Rates.from_full(train, evals, data.n_heldin, data.n_bins)

    def n_parameters(self) -> int:
        return int(self.rate.size)


def variant(name: str, **attrs: Any) -> type[ModelAdapter]:
    """A subclass of Good with ``attrs`` replaced, importable by name (so it pickles)."""
    cls = type(name, (Good,), {"__module__": __name__, **attrs})
    globals()[name] = cls
    return cls


def _predict_then(change: Any) -> Any:
    def predict(self: Good, data: PhaseData) -> Rates:
        return change(Good.predict(self, data))

    return predict


def _wrong_shape(r: Rates) -> Rates:
    return dataclasses.replace(r, eval_rates_heldout=r.eval_rates_heldout[1:])


def _with_nan(r: Rates) -> Rates:
    bad = r.eval_rates_heldout.copy()
    bad[0, 0, 0] = np.nan
    return dataclasses.replace(r, eval_rates_heldout=bad)


def _with_zero(r: Rates) -> Rates:
    bad = r.eval_rates_heldin_forward.copy()
    bad[..., 0] = 0.0
    return dataclasses.replace(r, eval_rates_heldin_forward=bad)


def _with_negative(r: Rates) -> Rates:
    bad = r.train_rates_heldin.copy()
    bad[0, 0, 0] = -1e-9
    return dataclasses.replace(r, train_rates_heldin=bad)


def _no_forward(r: Rates) -> Rates:
    return dataclasses.replace(r, eval_rates_heldout_forward=None)


_draws = itertools.count()


def _fit_unseeded(self: Good, data: PhaseData) -> None:
    Good.fit(self, data)
    self.rate = self.rate * (1.0 + 0.01 * next(_draws))  # differs on every fit


def _fit_writes_input_in_place(self: Good, data: PhaseData) -> None:
    data.train_spikes_heldin[0, 0, 0] += 1  # read-only view: raises
    Good.fit(self, data)


def _fit_unlocks_and_writes(self: Good, data: PhaseData) -> None:
    spikes = data.train_spikes_heldin
    spikes.flags.writeable = True  # allowed on a view of a writable base
    spikes[0, 0, 0] += 1
    Good.fit(self, data)


def _fit_keeps_lambda(self: Good, data: PhaseData) -> None:
    Good.fit(self, data)
    self.transform = lambda x: x


def _fit_ignores_seed(self: Good, data: PhaseData) -> None:
    self.rate = data.train_spikes_full().mean(axis=(0, 1)) + 1e-3


def _predict_drifts(self: Good, data: PhaseData) -> Rates:
    self.rate = self.rate * 1.001  # every call changes the model
    return Good.predict(self, data)


@dataclass
class ComplexConfig(ModelConfig):
    gain: complex = 1j


@dataclass
class LossyConfig(ModelConfig):
    """``to_dict`` drops a field, so the JSON does not rebuild the config."""

    scale: float = 2.0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_dict().items() if k != "scale"}


BROKEN: dict[str, tuple[type[ModelAdapter], str]] = {
    "wrong shape": (variant("WrongShape", predict=_predict_then(_wrong_shape)), "rates: 'eval_rates_heldout' has shape"),
    "NaN": (variant("WithNaN", predict=_predict_then(_with_nan)), "NaN/inf"),
    "zero rate": (variant("WithZero", predict=_predict_then(_with_zero)), "'eval_rates_heldin_forward' has 40 zero rates"),
    "negative rate": (variant("WithNegative", predict=_predict_then(_with_negative)), "'train_rates_heldin' has 1 negative rates"),
    "missing forward": (variant("NoForward", predict=_predict_then(_no_forward)), "'eval_rates_heldout_forward' missing"),
    "not Rates": (variant("ReturnsDict", predict=lambda self, d: {"x": 1}), "must return nlbsuite.data.Rates"),
    "unseeded": (variant("Unseeded", fit=_fit_unseeded), "determinism: a second fit with seed 0"),
    "ignores seed": (variant("IgnoresSeed", fit=_fit_ignores_seed), "the model ignores its seed"),
    "predict drifts": (variant("Drifts", predict=_predict_drifts), "repeatable predict"),
    "writes input": (variant("WritesInput", fit=_fit_writes_input_in_place), "fit: raised ValueError.*copy an array"),
    "mutates input": (variant("MutatesInput", fit=_fit_unlocks_and_writes), "input mutation: .*train_spikes_heldin"),
    "unpicklable": (variant("Unpicklable", fit=_fit_keeps_lambda), "pickle: the fitted model does not pickle"),
    "missing preset": (variant("NoPaper", presets={"smoke": {}, "cpu": {}}), "missing preset.*paper"),
    "bad preset key": (variant("BadKey", presets={**Good.presets, "cpu": {"nope": 1}}), "preset 'cpu' does not build"),
    "config not JSON": (variant("NotJson", config_class=ComplexConfig, presets={"smoke": {}, "cpu": {}, "paper": {}}), "not JSON"),
    "lossy config": (variant("Lossy", config_class=LossyConfig, presets={"smoke": {}, "cpu": {"scale": 3.0}, "paper": {}}), "preset 'cpu': rebuilt from to_dict\\(\\) JSON it differs"),
    "no info": (variant("NoInfo", info=None), "info must be a ModelInfo"),
    "negative params": (variant("NegParams", n_parameters=lambda self: -1), "n_parameters"),
    "latents shape": (variant("BadLatents", latents=lambda self, x: np.zeros((2, 3, 1))), "latents\\(train_spikes_heldin\\) has shape \\(2, 3, 1\\)"),
    "latents NaN": (variant("NanLatents", latents=lambda self, x: np.full((*x.shape[:2], 2), np.nan)), "not a finite float array"),
}  # fmt: skip


def test_a_well_behaved_adapter_passes_and_returns_the_fit(tiny_lorenz: PhaseData) -> None:
    result = check_adapter(Good, tiny_lorenz)
    assert isinstance(result.model, Good) and result.model.seed == 0
    assert result.model.config.device == "cpu"
    shapes = {k: v.shape for k, v in result.rates.arrays().items()}
    assert shapes == tiny_lorenz.rate_shapes()
    assert result.data is tiny_lorenz


def test_default_data_is_tiny_lorenz() -> None:
    result = check_adapter(Good)
    assert result.data.dataset == "lorenz_tiny" and result.data.train_spikes_heldin.shape[0] == 32


@pytest.mark.parametrize("defect", list(BROKEN))
def test_each_defect_fails_with_a_message_naming_it(defect: str, tiny_lorenz: PhaseData) -> None:
    adapter, message = BROKEN[defect]
    data = dataclasses.replace(tiny_lorenz)
    for name in ("train_spikes_heldin", "train_spikes_heldout", "eval_spikes_heldin"):
        setattr(data, name, getattr(tiny_lorenz, name).copy())  # mutation stays in the test
    with pytest.raises(AdapterCheckError, match=message) as info:
        check_adapter(adapter, data)
    assert str(info.value).startswith(f"check_adapter({adapter.__name__}): ")
    assert isinstance(info.value, AssertionError)  # pytest reports it as a failed assert
