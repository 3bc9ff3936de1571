"""Conformance test for model adapters: :func:`check_adapter`, for ours and third-party ones.

Call it from a model's tests (pytest shows its message on failure)::

    from nlbsuite.testing import check_adapter

    def test_conforms():
        result = check_adapter(MyModel)          # smoke preset on tiny Lorenz data
        assert result.rates.eval_rates_heldout.mean() > 0   # model-specific checks go on

It fits the ``smoke`` preset on tiny data (Lorenz ``tiny``, val phase: 32 train and 8 eval
trials, 20 + 5 forward bins, 22 + 8 neurons) and checks, in order:

1. declaration: ``info`` is a :class:`ModelInfo` with a name, ``config_class`` a
   :class:`ModelConfig` dataclass, the presets include smoke, cpu and paper and each builds
   a config;
2. config round trip: ``to_dict()`` -> JSON -> ``config_class(**...)`` gives a config with
   the same fields (compared as JSON: a tuple may come back a list) and the same
   :meth:`ModelConfig.hash`, for every preset;
3. fit and predict on :meth:`PhaseData.model_input` (read-only arrays) without errors, and
   with the input arrays unchanged afterwards;
4. rates: a :class:`Rates` with every array the data needs, of the right shape, finite and
   non-negative; strictly positive where a Poisson likelihood scores them (eval held-out
   and forward rates: a zero rate there is an infinite loss on any spike);
5. predict twice on the fitted model gives identical rates;
6. determinism: a second model with the same seed gives bit-identical rates (on CPU);
   a ``stochastic`` model with another seed gives different rates;
7. pickle: the fitted model survives ``pickle`` and predicts the same rates;
8. ``n_parameters()`` is a non-negative int;
9. if the adapter has the optional ``latents(heldin)`` method: for the train and the eval
   trials' held-in spikes (trial, time, neuron) it returns a finite float array (trial,
   time, latent) with the trials and bins of its input.

Each failure raises :class:`AdapterCheckError` (an ``AssertionError``) naming the adapter,
the check and what was found.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo
from nlbsuite.data import PhaseData, Rates

#: Presets every model declares (``smoke``: seconds, for tests; ``cpu``; ``paper``).
REQUIRED_PRESETS = ("smoke", "cpu", "paper")
#: Rate arrays scored by a Poisson likelihood (co-bps, fp-bps): must be strictly positive.
POISSON_SCORED = ("eval_rates_heldout", "eval_rates_heldin_forward", "eval_rates_heldout_forward")


class AdapterCheckError(AssertionError):
    """An adapter failed a :func:`check_adapter` check."""


@dataclass
class CheckResult:
    """What :func:`check_adapter` fitted: the model, its rates and the data (full view, with
    ground truth), so a model's own tests can go on without fitting again."""

    model: ModelAdapter
    rates: Rates
    data: PhaseData


def tiny_data() -> PhaseData:
    """The default check data: Lorenz ``tiny``, val phase, seed 0."""
    from nlbsuite.lorenz import make_lorenz

    return make_lorenz(phase="val", seed=0, size="tiny")


def check_adapter(
    adapter_class: type[ModelAdapter],
    data: PhaseData | None = None,
    *,
    preset: str = "smoke",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> CheckResult:
    """Run the conformance checks (module docstring) on ``adapter_class``.

    ``data``: a :class:`PhaseData` (default :func:`tiny_data`); models see its
    :meth:`~PhaseData.model_input`. ``preset`` and ``overrides`` build the config
    (``device`` is forced to "cpu" so the determinism check is meaningful). Returns the
    fitted model, its rates and the data; raises :class:`AdapterCheckError` on a failure.
    """
    name = getattr(adapter_class, "__name__", repr(adapter_class))

    def fail(check: str, message: str) -> AdapterCheckError:
        return AdapterCheckError(f"check_adapter({name}): {check}: {message}")

    _check_declaration(adapter_class, fail)
    for p in adapter_class.presets:
        _check_round_trip(adapter_class, p, fail)
    data = tiny_data() if data is None else data
    config = adapter_class.make_config(preset, {**(overrides or {}), "device": "cpu"})

    model, rates = _fit_predict(adapter_class, config, seed, data, fail)
    _check_rates(rates, data, fail, "rates")
    view = data.model_input()
    again = _call(fail, "predict (second call)", model.predict, view)
    _check_equal(rates, again, fail, "repeatable predict", "a second predict() of the fitted model")

    _, same = _fit_predict(adapter_class, config, seed, data, fail)
    _check_equal(rates, same, fail, "determinism", f"a second fit with seed {seed}")
    if adapter_class.info.stochastic:
        _, other = _fit_predict(adapter_class, config, seed + 1, data, fail)
        if _max_diff(rates, other) == 0.0:
            raise fail(
                "seed",
                f"info.stochastic is True but seeds {seed} and {seed + 1} gave identical "
                "rates: the model ignores its seed",
            )

    try:
        restored = pickle.loads(pickle.dumps(model))
    except Exception as exc:
        raise fail("pickle", f"the fitted model does not pickle: {exc!r}") from exc
    unpickled = _call(fail, "predict after pickle", restored.predict, data.model_input())
    _check_equal(rates, unpickled, fail, "pickle", "the unpickled model")

    n_params = model.n_parameters()
    if not (isinstance(n_params, (int, np.integer)) and n_params >= 0):
        raise fail("n_parameters", f"expected a non-negative int, got {n_params!r}")
    if callable(getattr(model, "latents", None)):
        for part in ("train_spikes_heldin", "eval_spikes_heldin"):
            heldin = getattr(view, part)
            lat = np.asarray(_call(fail, f"latents({part})", model.latents, heldin))
            if lat.ndim != 3 or lat.shape[:2] != heldin.shape[:2] or lat.shape[2] < 1:
                raise fail(
                    "latents",
                    f"latents({part}) has shape {lat.shape}; expected "
                    f"({heldin.shape[0]}, {heldin.shape[1]}, latent)",
                )
            if not (np.issubdtype(lat.dtype, np.floating) and np.isfinite(lat).all()):
                raise fail("latents", f"latents({part}) is not a finite float array")
    return CheckResult(model=model, rates=rates, data=data)


# ----------------------------------------------------------------------------------------


def _check_declaration(cls: type[ModelAdapter], fail: Any) -> None:
    if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
        raise fail("declaration", "not a subclass of nlbsuite.adapter.ModelAdapter")
    info = getattr(cls, "info", None)
    if not isinstance(info, ModelInfo) or not info.name:
        raise fail("declaration", f"info must be a ModelInfo with a name, got {info!r}")
    config_class = cls.config_class
    if not (
        isinstance(config_class, type)
        and issubclass(config_class, ModelConfig)
        and dataclasses.is_dataclass(config_class)
    ):
        raise fail("declaration", f"config_class must be a ModelConfig dataclass: {config_class!r}")
    missing = [p for p in REQUIRED_PRESETS if p not in cls.presets]
    if missing:
        raise fail("presets", f"missing preset(s) {', '.join(missing)} (have {list(cls.presets)})")


def _check_round_trip(cls: type[ModelAdapter], preset: str, fail: Any) -> None:
    try:
        config = cls.make_config(preset)
    except Exception as exc:
        raise fail("presets", f"preset '{preset}' does not build a config: {exc}") from exc
    try:
        as_json = json.dumps(config.to_dict(), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise fail("config round trip", f"preset '{preset}': to_dict() is not JSON: {exc}") from exc
    try:
        back = cls.config_class(**json.loads(as_json))
    except Exception as exc:
        raise fail(
            "config round trip", f"preset '{preset}': config_class(**json) failed: {exc}"
        ) from exc
    fields, back_fields = _fields_json(config), _fields_json(back)
    if fields != back_fields or back.hash() != config.hash():
        raise fail(
            "config round trip",
            f"preset '{preset}': rebuilt from to_dict() JSON it differs: {fields} -> "
            f"{back_fields}",
        )


def _fields_json(config: ModelConfig) -> str:
    """Every dataclass field of ``config`` as JSON (tuples and lists alike)."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=repr)


def _call(fail: Any, what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        hint = (
            " (model inputs are read-only views: copy an array before changing it)"
            if "read-only" in str(exc)
            else ""
        )
        raise fail(what, f"raised {type(exc).__name__}: {exc}{hint}") from exc


def _fingerprint(data: PhaseData) -> dict[str, str]:
    """sha256 of every array field of ``data`` (and its scalars), to detect mutation."""
    out = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if isinstance(value, np.ndarray):
            out[f.name] = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
            out[f.name] += str((value.shape, value.dtype))
        elif isinstance(value, (str, int, float, type(None))):
            out[f.name] = repr(value)
    return out


def _fit_predict(
    cls: type[ModelAdapter], config: ModelConfig, seed: int, data: PhaseData, fail: Any
) -> tuple[ModelAdapter, Rates]:
    """Fit and predict on ``data.model_input()``; fail if either changes the input."""
    model = cls(dataclasses.replace(config), seed=seed)
    view = data.model_input()
    before, before_full = _fingerprint(view), _fingerprint(data)
    _call(fail, "fit", model.fit, view)
    rates = _call(fail, "predict", model.predict, view)
    for what, obj, prior in (("model input", view, before), ("data", data, before_full)):
        changed = [k for k, v in _fingerprint(obj).items() if prior.get(k) != v]
        if changed:
            raise fail("input mutation", f"fit/predict changed {what} field(s) {changed}")
    return model, rates


def check_rates(rates: Any, data: PhaseData) -> None:
    """Check 4 alone: ``rates`` has every array ``data`` needs, of the right shape, finite,
    non-negative, and strictly positive where Poisson-scored; :class:`AdapterCheckError`
    otherwise."""

    def fail(check: str, message: str) -> AdapterCheckError:
        return AdapterCheckError(f"check_rates: {message}")

    _check_rates(rates, data, fail, "rates")


def _check_rates(rates: Any, data: PhaseData, fail: Any, check: str) -> None:
    if not isinstance(rates, Rates):
        raise fail(check, f"predict() must return nlbsuite.data.Rates, got {type(rates).__name__}")
    arrays = rates.arrays()
    for key, shape in data.rate_shapes().items():
        arr = arrays.get(key)
        if arr is None:
            raise fail(check, f"'{key}' missing (expected shape {shape})")
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise fail(check, f"'{key}' has shape {arr.shape}, expected {shape}")
        if not np.isfinite(arr).all():
            raise fail(check, f"'{key}' has {int((~np.isfinite(arr)).sum())} NaN/inf entries")
        if not (arr >= 0).all():
            raise fail(check, f"'{key}' has {int((arr < 0).sum())} negative rates")
        if key in POISSON_SCORED and not (arr > 0).all():
            raise fail(
                check,
                f"'{key}' has {int((arr <= 0).sum())} zero rates; it is scored by a Poisson "
                "likelihood, where a zero rate on a spike is an infinite loss",
            )


def _max_diff(a: Rates, b: Rates) -> float:
    arrays_b = b.arrays()
    worst = 0.0
    for key, arr in a.arrays().items():
        other = arrays_b.get(key)
        if other is None or np.shape(other) != np.shape(arr):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(np.asarray(arr) - np.asarray(other)), initial=0)))
    return worst


def _check_equal(first: Rates, second: Any, fail: Any, check: str, what: str) -> None:
    if not isinstance(second, Rates):
        raise fail(check, f"{what} returned {type(second).__name__}, not Rates")
    a, b = first.arrays(), second.arrays()
    if a.keys() != b.keys():
        raise fail(check, f"{what} returned arrays {sorted(b)}, the first {sorted(a)}")
    for key in a:
        if not np.array_equal(a[key], b[key]):
            diff = np.max(np.abs(np.asarray(a[key], float) - np.asarray(b[key], float)))
            raise fail(check, f"{what} gave different '{key}' (max abs difference {diff:.3g})")
