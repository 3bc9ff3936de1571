"""Model registry: every model, the suite's own included, comes from the ``nlbsuite.models``
entry-point group.

Entries are lazy ``"module:attr"`` strings, so listing models imports nothing heavy (torch
is imported only when a torch model is actually used). nlbsuite registers its built-in
models in its own ``pyproject.toml`` exactly as a third-party package does::

    [project.entry-points."nlbsuite.models"]
    my_model = "my_package.adapter:MyModel"
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points

from nlbsuite.adapter import ModelAdapter
from nlbsuite.errors import UserError

ENTRY_POINT_GROUP = "nlbsuite.models"
#: The distribution whose models are the built-in ones (they cannot be shadowed).
BUILTIN_DIST = "nlbsuite"


def model_sources() -> dict[str, tuple[str, str]]:
    """Model name -> (``"module:attr"``, distribution that registers it), sorted by name.
    When two distributions register one name, nlbsuite's own entry wins."""
    found: dict[str, tuple[str, str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ""
        if ep.name not in found or dist == BUILTIN_DIST:
            found[ep.name] = (ep.value, dist)
    return dict(sorted(found.items()))


def model_entries() -> dict[str, str]:
    """All registered model names -> ``"module:attr"``."""
    return {name: target for name, (target, _) in model_sources().items()}


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or the list of choices."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(choices)}"


def get_model_class(model: str) -> type[ModelAdapter]:
    """The adapter class registered under ``model``; UserError with a suggestion if unknown."""
    entries = model_entries()
    if not entries:
        raise UserError(
            f"no models registered under the '{ENTRY_POINT_GROUP}' entry point: install "
            "nlbsuite (pip install -e .) so its built-in models are registered",
            "model",
            model,
        )
    if model not in entries:
        raise UserError(f"unknown model; {did_you_mean(model, list(entries))}", "model", model)
    target = entries[model]
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UserError(
            f"cannot import {module_name} ({exc}); is the package that provides it installed "
            "(torch models: pip install torch==2.13.0)?",
            "model",
            model,
        ) from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
        raise UserError(f"{target} is not a ModelAdapter subclass", "model", model)
    return cls
