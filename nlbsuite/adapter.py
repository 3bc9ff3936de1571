"""The model adapter protocol: the one interface every model implements.

A model maps spikes to rates. It sees :meth:`PhaseData.model_input` (train spikes of held-in
and held-out neurons with their forward windows, train behaviour, eval held-in spikes) and
returns :class:`~nlbsuite.data.Rates`. nlbsuite owns everything around that: data loading,
concatenation and splitting of the six submission arrays, scoring. Torch models may train in
:mod:`nlbsuite.training` (the shared loop and the one sample-averaging rule), and every
model's tests call :func:`nlbsuite.testing.check_adapter`.

Writing a model takes a config dataclass and two methods::

    @dataclass
    class MyConfig(ModelConfig):
        hidden: int = 64

    class MyModel(ModelAdapter):
        info = ModelInfo(name="my_model", citation="Me et al. 2026")
        config_class = MyConfig
        presets = {"smoke": {"hidden": 8}, "cpu": {}, "paper": {"hidden": 256}}

        def fit(self, data): ...
        def predict(self, data): return Rates.from_full(train, eval, data.n_heldin, data.n_bins)

Optional: ``latents(heldin) -> (trial, time, latent)`` latent trajectories for any trials'
held-in spikes (trial, time, neuron), train or eval; runs save the eval trials' latents
for the report (:mod:`nlbsuite.predictions`) and :func:`nlbsuite.testing.check_adapter`
checks their shape. The seed models implement it (see each model's docstring).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import random
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError


@dataclass(frozen=True)
class ModelInfo:
    """Metadata a model declares about itself."""

    name: str
    citation: str = ""
    url: str = ""
    stochastic: bool = False
    description: str = ""


@dataclass
class ModelConfig:
    """Base for per-model configs. Subclass with a ``@dataclass`` and add fields.

    ``device``: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    ``n_samples``: posterior samples averaged per prediction (stochastic models).
    """

    device: str = "auto"
    n_samples: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short content hash of the config (keys sorted), used in result records and paths."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


class ModelAdapter(ABC):
    """Base class of every model. See the module docstring for a full example.

    Class attributes: ``info`` (:class:`ModelInfo`), ``config_class`` (a
    :class:`ModelConfig` dataclass), ``presets`` (preset name -> field overrides; ``smoke``
    runs in seconds, ``cpu`` is the best within ~10 minutes on 2 CPU cores, ``paper`` has
    the published hyperparameters), optionally ``search_space`` (config field -> range,
    :mod:`nlbsuite.searchspace`, for ``nlbsuite tune``; a model that trains in steps may add
    ``partial_fit(data, epochs)`` for ASHA and PBT).
    """

    info: ClassVar[ModelInfo]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "cpu": {}, "paper": {}}
    search_space: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: ModelConfig | None = None, seed: int = 0) -> None:
        self.config = config if config is not None else self.config_class()
        self.seed = seed

    @classmethod
    def make_config(
        cls, preset: str = "cpu", overrides: dict[str, Any] | None = None
    ) -> ModelConfig:
        """Config for a named preset, with optional field overrides."""
        if preset not in cls.presets:
            raise UserError(
                f"model '{cls.info.name}' has presets {', '.join(cls.presets)}", "preset", preset
            )
        values = {**cls.presets[preset], **(overrides or {})}
        known = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"config key(s) {', '.join(unknown)} unknown for model '{cls.info.name}'; "
                f"known: {', '.join(sorted(known))}",
                "overrides",
            )
        return cls.config_class(**values)

    @abstractmethod
    def fit(self, data: PhaseData) -> None:
        """Train on ``data`` (a :meth:`PhaseData.model_input` view: no targets, no truth)."""

    @abstractmethod
    def predict(self, data: PhaseData) -> Rates:
        """Predicted rates (expected counts per bin) for train and eval trials.

        Forward-window rates are required when ``data.n_forward > 0``.
        """

    def n_parameters(self) -> int:
        """Number of fitted parameters (0 if the model has none)."""
        return 0


# ----------------------------------------------------------------------------------------
# Helpers shared by adapters
# ----------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if imported) torch for reproducible CPU runs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        return
    torch.manual_seed(seed)


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is available, else ``"cpu"``."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` CPU threads (BLAS, OpenMP and torch if imported), then restore
    the previous counts; ``n <= 0`` changes nothing. Threaded sums depend on the thread
    count, so a fixed count gives the same numbers on every machine."""
    if n <= 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else 0
    with threadpool_limits(n):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)


Method = TypeVar("Method", bound=Callable[..., Any])


def fixed_threads(method: Method) -> Method:
    """Decorate an adapter method to run on ``config.num_threads`` CPU threads (default 1)."""

    @functools.wraps(method)
    def wrapper(self: ModelAdapter, *args: Any, **kwargs: Any) -> Any:
        with cpu_threads(getattr(self.config, "num_threads", 1)):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
