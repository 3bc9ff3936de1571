"""The committed config files (``configs/*.json``) load and build their model's config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nlbsuite.configfile import load_config_file, resolve_preset
from nlbsuite.registry import get_model_class

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


def test_there_are_config_files() -> None:
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_file_builds_its_model_config(path: Path) -> None:
    saved = load_config_file(path)
    assert saved.source, f"{path.name}: say where the settings come from"
    base, overrides, label = resolve_preset(str(path), saved.model)
    assert label == path.stem and base == saved.base_preset
    config = get_model_class(saved.model).make_config(base, overrides)
    values = dataclasses.asdict(config)
    for key, value in saved.overrides.items():
        assert values[key] == value
