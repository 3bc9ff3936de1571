"""Ensembles: rate averaging, member selection rules, the record and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from nlbsuite.cli import main
from nlbsuite.data import Rates
from nlbsuite.datasets import load_dataset
from nlbsuite.ensemble import average_rates, ensemble, select_top
from nlbsuite.errors import UserError
from nlbsuite.results import load_record, record_path
from nlbsuite.runner import load_run_model, run
from nlbsuite.scoring import evaluate

SMOOTH = {"kern_sd_ms": 60.0, "alpha": 0.01}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three finished runs on lorenz_tiny (val): mean_rate and smoothing at two widths."""
    results = tmp_path_factory.mktemp("results")
    run("mean_rate", "lorenz_tiny", results_dir=results, log=None)
    run("smoothing", "lorenz_tiny", results_dir=results, overrides=SMOOTH, log=None)
    run("smoothing", "lorenz_tiny", results_dir=results, log=None,
        overrides={"kern_sd_ms": 30.0, "alpha": 0.01})  # fmt: skip
    return results


def paths(results: Path) -> list[Path]:
    return sorted(results.glob("*.json"))


def test_average_rates_is_the_entrywise_mean() -> None:
    a = Rates(np.ones((2, 3, 1)), np.ones((2, 3, 2)), np.ones((1, 3, 1)), np.zeros((1, 3, 2)))
    b = Rates(3 * np.ones((2, 3, 1)), np.ones((2, 3, 2)), np.ones((1, 3, 1)), np.ones((1, 3, 2)))
    mean = average_rates([a, b])
    assert (mean.train_rates_heldin == 2).all() and (mean.eval_rates_heldout == 0.5).all()
    assert mean.eval_rates_heldin_forward is None
    c = dataclasses.replace(b, eval_rates_heldout=np.ones((1, 3, 3)))
    with pytest.raises(UserError, match="eval_rates_heldout"):
        average_rates([a, c])


def test_ensemble_scores_the_mean_of_member_predictions(runs: Path, tmp_path: Path) -> None:
    members = [p for p in paths(runs) if "smoothing" in p.name]
    rec = ensemble(members, name="smooth_pair", results_dir=tmp_path, log=None)
    data = load_dataset("lorenz_tiny")
    preds = [load_run_model(p).predict(data.model_input()) for p in members]
    expected = evaluate(data, average_rates(preds))
    assert rec.metrics == pytest.approx(expected)
    assert rec.model == "smooth_pair" and rec.preset == "ensemble"
    assert rec.config["members"] == sorted(load_record(p).run_id for p in members)
    assert set(rec.extras["members"]) == set(rec.config["members"])
    best = max(load_record(p).metrics["co-bps"] for p in members)
    assert rec.extras["beats_best_member_co-bps"] == (rec.metrics["co-bps"] > best)
    saved = load_record(record_path(tmp_path, rec))
    assert saved.metrics == pytest.approx(rec.metrics)


def test_top_n_picks_the_best_val_runs(runs: Path) -> None:
    records = [load_record(p) for p in paths(runs)]
    top = select_top(records, 2, "co-bps")
    scores = sorted((r.metrics["co-bps"] for r in records), reverse=True)
    assert [r.metrics["co-bps"] for r in top] == scores[:2]
    assert len({r.run_id for r in top}) == 2
    test_rec = dataclasses.replace(records[0], phase="test")
    with pytest.raises(UserError, match="test-phase run"):
        select_top([*records, test_rec], 1)
    with pytest.raises(UserError, match="top 5 of 3"):
        select_top(records, 5)
    with pytest.raises(UserError, match="no metric 'vel R2'"):
        select_top(records, 1, "vel R2")


def test_members_must_share_the_data(runs: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    rec = run("mean_rate", "lorenz_tiny", phase="val", seed=1, results_dir=other, log=None)
    raw = json.loads(record_path(other, rec).read_text())
    raw["bin_width_ms"] = 5
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(raw))
    with pytest.raises(UserError, match="must share dataset key"):
        ensemble([paths(runs)[0], moved], results_dir=tmp_path, log=None)


def test_cli_ensemble_top_and_errors(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [load_record(p).run_id for p in paths(runs)]
    assert main(["ensemble", *ids, "--top", "2", "--name", "top2", "--results", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "top2" in out and "beats its best member" in out
    assert main(["ensemble", "nope__run", "--results", str(runs)]) == 2
    assert "result file not found" in capsys.readouterr().err
    assert main(["ensemble", ids[0], ids[0], "--results", str(runs)]) == 2
    assert "listed twice" in capsys.readouterr().err


def test_cli_ensemble_of_runs_on_a_rebinned_tensor_file(
    mc_maze_small_val: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs on a 5 ms file at ``--bin 20``: ``--data`` is read at the members' bin width
    (read at 5 ms, its hash is not the members' and the ensemble was refused)."""
    data = load_dataset(None, path=mc_maze_small_val, bin_width_ms=20)
    for kern in (40.0, 80.0):
        run("smoothing", data, results_dir=tmp_path, log=None,
            overrides={"kern_sd_ms": kern, "alpha": 0.01})  # fmt: skip
    members = paths(tmp_path)
    argv = ["ensemble", *map(str, members), "--data", str(mc_maze_small_val)]
    assert main([*argv, "--name", "pair20", "--results", str(tmp_path)]) == 0
    rec = load_record(next(tmp_path.glob("mc_maze_small_20__val__pair20__*.json")))
    preds = [load_run_model(p).predict(data.model_input()) for p in members]
    assert rec.bin_width_ms == 20
    assert rec.metrics["co-bps"] == pytest.approx(evaluate(data, average_rates(preds))["co-bps"])
    assert "beats its best member" in capsys.readouterr().out
