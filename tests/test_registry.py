"""Model registry and CLI commands from entry points: built-ins are registered exactly as
third-party models, and a package's command loads only when it runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import nlbsuite.cli as cli
import nlbsuite.registry as registry
from nlbsuite.errors import UserError

BUILTINS = {
    "smoothing": "baselines.smoothing:Smoothing",
    "mean_rate": "baselines.mean_rate:MeanRate",
    "gpfa": "baselines.gpfa:GPFA",
    "slds": "baselines.slds:SLDS",
    "langevin_flow": "baselines.langevin_flow:LangevinFlow",
    "latent_sde": "baselines.latent_sde:LatentSDE",
    "lowrank_rnn": "baselines.lowrank_rnn:LowRankRNN",
}


def test_builtin_models_come_from_nlbsuites_own_entry_points() -> None:
    sources = registry.model_sources()
    for name, target in BUILTINS.items():
        assert sources[name] == (target, "nlbsuite"), name
    assert not hasattr(registry, "BUILTIN_MODELS")  # no hard-coded list beside the metadata
    assert list(sources) == sorted(sources)


def _fake_entry_points(*eps: tuple[str, str, str]):
    def entry_points(group: str):
        assert group == registry.ENTRY_POINT_GROUP
        return [SimpleNamespace(name=n, value=v, dist=SimpleNamespace(name=d)) for n, v, d in eps]

    return entry_points


def test_third_party_models_are_listed_and_cannot_shadow_a_builtin(monkeypatch) -> None:
    monkeypatch.setattr(
        registry,
        "entry_points",
        _fake_entry_points(
            ("smoothing", "evil:Smoothing", "evil-pkg"),
            ("smoothing", "baselines.smoothing:Smoothing", "nlbsuite"),
            ("scaled_mean", "my_package.adapter:ScaledMean", "my-package"),
            ("mean_rate", "baselines.mean_rate:MeanRate", "nlbsuite"),
            ("mean_rate", "evil:MeanRate", "evil-pkg"),
        ),
    )
    assert registry.model_sources() == {
        "mean_rate": ("baselines.mean_rate:MeanRate", "nlbsuite"),
        "scaled_mean": ("my_package.adapter:ScaledMean", "my-package"),
        "smoothing": ("baselines.smoothing:Smoothing", "nlbsuite"),
    }
    with pytest.raises(UserError, match=r"cannot import my_package\.adapter"):
        registry.get_model_class("scaled_mean")


def test_no_registered_models_says_to_install_nlbsuite(monkeypatch) -> None:
    monkeypatch.setattr(registry, "entry_points", _fake_entry_points())
    with pytest.raises(UserError, match=r"no models registered .*\(pip install -e \.\)"):
        registry.get_model_class("smoothing")


def test_package_commands_come_from_entry_points() -> None:
    assert cli.plugin_commands()["analyze"] == "baselines.lowrank_rnn.cli"
    assert "analyze" not in __import__("nlbsuite.commands").commands.COMMANDS


def test_a_package_command_that_cannot_load_is_one_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli, "plugin_commands", lambda: {"broken": "no_such_module_xyz"})
    assert cli.main(["broken", "x"]) == 2
    err = capsys.readouterr().err
    assert "command 'broken' (no_such_module_xyz) cannot be loaded" in err
    assert err.count("\n") == 1
    help_text = cli.build_parser([]).format_help()  # listed, not imported, when not run
    assert "broken" in help_text and "(from no_such_module_xyz)" in help_text
