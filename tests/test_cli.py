"""The command line: defaults, user errors (one line, exit 2), entry-point models, compare."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nlbsuite.cli import main
from nlbsuite.results import load_records
from nlbsuite.runner import run

REPO = Path(__file__).resolve().parents[1]


def cli(*args, env=None, cwd=None):
    """Run ``python -m nlbsuite ARGS`` in a subprocess; returns (code, stdout, stderr)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "nlbsuite", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or REPO,
        timeout=600,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_no_arguments_runs_smoothing_on_lorenz_and_writes_the_leaderboard(tmp_path):
    results = tmp_path / "leaderboard" / "results"
    code, out, err = cli(env={"NLBSUITE_RESULTS": str(results)})
    assert code == 0, err
    assert "lorenz_20 (val)" in out and "smoothing" in out
    (rec,) = load_records(results)
    assert (rec.model, rec.dataset, rec.phase) == ("smoothing", "lorenz", "val")
    assert rec.metrics["co-bps"] > 0.2
    assert "| smoothing" in (results.parent / "README.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--model", "smoothin"], "did you mean 'smoothing'?"),
        (["run", "--dataset", "mc_maz"], "did you mean 'mc_maze'?"),
        (["run", "--data", "/nonexistent/x.h5"], "--data /nonexistent/x.h5: file not found"),
        (
            ["run", "--model", "smoothing", "--dataset", "lorenz_tiny", "--set", "nokey"],
            "expected KEY=VALUE",
        ),
        (["run", "--dataset", "lorenz_tiny", "--set", "hidden=3"], "hidden"),
        (["run", "--dataset", "lorenz_tiny", "--preset", "huge"], "--preset 'huge'"),
        (["run", "--bin", "7", "--dataset", "lorenz_tiny"], "--bin 7"),
        (["leaderboard", "--results", "/nonexistent/dir"], "results directory not found"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NLBSUITE_RESULTS", str(tmp_path))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_corrupted_record_gives_clear_cli_error(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{ not json")
    assert main(["leaderboard", "--results", str(tmp_path)]) == 2
    assert "bad.json: not a valid result JSON" in capsys.readouterr().err


def test_listing_commands(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "smoothing" in out and "mean_rate" in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "mc_maze_small" in out and "DANDI 000140" in out and "lorenz" in out


THIRD_PARTY = """
import numpy as np
from nlbsuite.adapter import ModelAdapter, ModelInfo
from nlbsuite.data import Rates


class TwiceMean(ModelAdapter):
    info = ModelInfo(name="twice_mean", description="third-party test model")

    def fit(self, data):
        self.mean = data.train_spikes_full().mean(axis=(0, 1)) * 2 + 1e-6

    def predict(self, data):
        def const(n, t):
            return np.broadcast_to(self.mean, (n, t, self.mean.size)).copy()
        return Rates.from_full(const(len(data.train_spikes_heldin), data.n_bins),
                               const(len(data.eval_spikes_heldin), data.n_bins + data.n_forward),
                               data.n_heldin, data.n_bins)
"""


def test_third_party_model_registers_through_the_entry_point(tmp_path):
    site = tmp_path / "site"
    (site / "toy_models").mkdir(parents=True)
    (site / "toy_models" / "__init__.py").write_text(THIRD_PARTY)
    dist = site / "toy_models-0.1.dist-info"  # what pip writes for an installed package
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-models\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nlbsuite.models]\ntwice_mean = toy_models:TwiceMean\n")
    env = {"PYTHONPATH": f"{site}{os.pathsep}{REPO}", "NLBSUITE_RESULTS": str(tmp_path / "res")}
    code, out, err = cli("models", env=env)
    assert code == 0 and "twice_mean" in out and "toy-models" in out  # its distribution
    code, out, err = cli("run", "--model", "twice_mean", "--dataset", "lorenz_tiny", env=env)
    assert code == 0, err
    (rec,) = load_records(tmp_path / "res")
    assert rec.model == "twice_mean" and rec.metrics["co-bps"] < 0  # twice the rate is worse


def test_compare_exits_nonzero_on_regression_only(tmp_path, capsys):
    base, same, worse = tmp_path / "base", tmp_path / "same", tmp_path / "worse"
    rec = run("mean_rate", "lorenz_tiny", results_dir=base)
    run("mean_rate", "lorenz_tiny", results_dir=same)
    run("mean_rate", "lorenz_tiny", results_dir=worse)
    path = next(worse.glob("*.json"))
    raw = json.loads(path.read_text())
    raw["metrics"]["co-bps"] = rec.metrics["co-bps"] - 0.05
    path.write_text(json.dumps(raw))
    assert main(["compare", str(base), str(same)]) == 0
    assert "no regression" in capsys.readouterr().out
    assert main(["compare", str(base), str(worse), "--tolerance", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "co-bps" in out
    assert main(["compare", str(base), str(worse), "--tolerance", "0.1"]) == 0
