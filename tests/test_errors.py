"""Errors speak the caller's language: a Python call names the parameter, the same mistake on
the command line names the flag (one line, exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlbsuite import load_dataset, run
from nlbsuite.catalog import check_bin_width, check_phase
from nlbsuite.cli import main
from nlbsuite.errors import UserError
from nlbsuite.nlb.specs import get_spec
from nlbsuite.registry import get_model_class

#: (Python call, the parameter it names, CLI arguments, what the CLI names instead)
CASES = [
    (lambda: load_dataset(phase="train"), "phase='train'", ["prepare", "mc_maze_small", "--phase", "train"], "--phase 'train'"),
    (lambda: check_phase("train"), "phase='train'", ["prepare", "mc_maze_small", "--phase", "train"], "--phase 'train'"),
    (lambda: load_dataset(bin_width_ms=7), "bin_width_ms=7", ["run", "--bin", "7"], "--bin 7"),
    (lambda: check_bin_width(7), "bin_width_ms=7", ["prepare", "mc_maze_small", "--bin", "7"], "--bin 7"),
    (lambda: load_dataset("lorenzz"), "dataset='lorenzz'", ["run", "--dataset", "lorenzz"], "--dataset 'lorenzz'"),
    (lambda: get_spec("mc_mazee"), "dataset='mc_mazee'", ["prepare", "mc_mazee"], "dataset 'mc_mazee'"),
    (lambda: get_model_class("smoothin"), "model='smoothin'", ["run", "--model", "smoothin"], "--model 'smoothin'"),
    (lambda: run("smoothing", "lorenz_tiny", preset="big", save=False), "preset='big'", ["run", "--preset", "big"], "--preset 'big'"),
    (lambda: run("smoothing", "lorenz_tiny", overrides={"hiddn": 3}, save=False), "overrides: config key(s) hiddn", ["run", "--set", "hiddn=3"], "--set: config key(s) hiddn"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "python", "argv", "flag"), CASES)
def test_python_names_the_parameter_and_the_cli_the_flag(
    call, python, argv, flag, tmp_path: Path, monkeypatch, capsys
) -> None:
    with pytest.raises(UserError) as err:
        call()
    assert str(err.value).startswith(python), str(err.value)
    assert "--" not in str(err.value)

    monkeypatch.setenv("NLBSUITE_RESULTS", str(tmp_path))
    monkeypatch.setenv("NLBSUITE_DATA", str(tmp_path))
    assert main(argv) == 2
    message = capsys.readouterr().err
    assert message.startswith(f"nlbsuite: error: {flag}"), message
    assert message.count("\n") == 1
    # the same explanation after the name
    assert message.endswith(f": {err.value.message}\n")


def test_an_error_without_a_parameter_reads_the_same_everywhere() -> None:
    error = UserError("run.json: not a valid result JSON")
    assert str(error) == "run.json: not a valid result JSON"
    assert error.param is None


def test_a_path_value_shows_as_the_path_on_the_command_line() -> None:
    error = UserError("file not found", "path", Path("a/b.h5"))
    assert str(error) == "path=PosixPath('a/b.h5'): file not found"
    assert error.for_flag("--data") == "--data a/b.h5: file not found"
