"""Named config files: a model's preset plus field overrides, saved as JSON.

``nlbsuite tune`` saves the best config it found as such a file; ``run``, ``submit`` and
``sweep`` take its path wherever they take a preset name (``--preset tuned.json``). The run
is recorded under the file's name (its stem) as preset, with the full config it built::

    {"model": "smoothing", "base_preset": "cpu", "overrides": {"kern_sd_ms": 40.0},
     "source": "nlbsuite tune --search random --samples 8 on lorenz_tiny (val)"}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nlbsuite.errors import UserError
from nlbsuite.results import write_result_file

SUFFIX = ".json"


@dataclass
class ConfigFile:
    """What a named config file holds; ``name`` (its stem) is the preset a record states."""

    model: str
    base_preset: str
    overrides: dict[str, Any]
    source: str = ""
    name: str = field(default="", compare=False)


def is_config_file(preset: str | Path | None) -> bool:
    """Whether ``preset`` names a config file (ends in ``.json``) rather than a preset."""
    return preset is not None and str(preset).endswith(SUFFIX)


def load_config_file(path: str | Path) -> ConfigFile:
    """Read a config file; a missing file, bad JSON or a missing key is a :class:`UserError`."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found", "preset") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a valid config JSON ({exc})", "preset") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: config file must hold a JSON object", "preset")
    for key, kind in (("model", str), ("base_preset", str), ("overrides", dict)):
        if not isinstance(raw.get(key), kind):
            raise UserError(
                f"{path}: config file key '{key}' must be a {kind.__name__} "
                "(keys: model, base_preset, overrides)",
                "preset",
            )
    return ConfigFile(
        raw["model"], raw["base_preset"], raw["overrides"], str(raw.get("source", "")), path.stem
    )


def resolve_preset(preset: str, model: str) -> tuple[str, dict[str, Any], str]:
    """``(base preset, overrides, label)`` for ``--preset``: a preset name stands for itself
    with no overrides; a config file for its base preset and overrides, labelled by its name.
    A file saved for another model is a :class:`UserError`."""
    if not is_config_file(preset):
        return preset, {}, preset
    saved = load_config_file(preset)
    if saved.model != model:
        raise UserError(f"{preset} is a config of model '{saved.model}', not '{model}'", "preset")
    return saved.base_preset, dict(saved.overrides), saved.name


def save_config_file(path: str | Path, config: ConfigFile) -> Path:
    """Write ``config`` to ``path`` atomically (the name is the file's stem)."""
    raw = {k: v for k, v in asdict(config).items() if k != "name"}
    return write_result_file(Path(path), json.dumps(raw, indent=2, sort_keys=True) + "\n")
