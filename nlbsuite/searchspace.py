"""Search spaces a model declares for ``nlbsuite tune`` (no Ray needed to declare them).

An adapter lists config fields and their ranges in the class attribute ``search_space``::

    search_space: ClassVar = {
        "lr": LogUniform(1e-4, 1e-2),
        "dropout": Uniform(0.0, 0.6),
        "hidden": Choice((32, 64, 128)),
    }

``nlbsuite tune`` samples trial configs from it (random search, ASHA) and perturbs the same
fields (PBT). A model that trains in steps may also define ``partial_fit(data, epochs)``:
train ``epochs`` more epochs from the current state, reading the searched fields (learning
rate, dropout, ...) from ``self.config`` on every call; PBT and ASHA then score it after each
step, and PBT copies the best trials' fitted adapters (pickled) to the worst with perturbed
configs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Choice:
    """One of ``values``."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Uniform:
    """A float in [low, high]."""

    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    """A float in [low, high], uniform in log scale."""

    low: float
    high: float


@dataclass(frozen=True)
class IntRange:
    """An integer in [low, high] (both included)."""

    low: int
    high: int


Domain = Choice | Uniform | LogUniform | IntRange


def to_ray(domain: Domain) -> Any:
    """The Ray Tune sampler of ``domain`` (``tune.choice``, ``uniform``, ...)."""
    from ray import tune

    if isinstance(domain, Choice):
        return tune.choice(list(domain.values))
    if isinstance(domain, Uniform):
        return tune.uniform(domain.low, domain.high)
    if isinstance(domain, LogUniform):
        return tune.loguniform(domain.low, domain.high)
    if isinstance(domain, IntRange):
        return tune.randint(domain.low, domain.high + 1)
    raise TypeError(f"not a search domain: {domain!r}")
