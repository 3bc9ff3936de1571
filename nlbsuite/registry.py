"""Model registry: built-in adapters plus third-party ones from the ``nlbsuite.models``
entry-point group.

Entries are lazy ``"module:attr"`` strings, so listing models imports nothing heavy (torch
is imported only when a torch model is actually used). A third-party package registers with::

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

BUILTIN_MODELS: dict[str, str] = {
    "smoothing": "baselines.smoothing:Smoothing",
    "mean_rate": "baselines.mean_rate:MeanRate",
    "langevin_flow": "baselines.langevin_flow:LangevinFlow",
    "latent_sde": "baselines.latent_sde:LatentSDE",
    "lowrank_rnn": "baselines.lowrank_rnn:LowRankRNN",
    "gpfa": "baselines.gpfa:GPFA",
    "slds": "baselines.slds:SLDS",
    "ndt": "baselines.ndt:NDT",
    "stndt": "baselines.stndt:STNDT",
    "lfads": "baselines.lfads:LFADS",
}


def model_entries() -> dict[str, str]:
    """All known model names -> ``"module:attr"``; third-party entries cannot shadow built-ins."""
    entries = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    entries.update(BUILTIN_MODELS)
    return dict(sorted(entries.items()))


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or the list of choices."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(choices)}"


def get_model_class(model: str) -> type[ModelAdapter]:
    """The adapter class registered under ``model``; UserError with a suggestion if unknown."""
    entries = model_entries()
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
