"""The spine end to end: data -> model -> rates -> evaluator -> record -> leaderboard."""

import json

import numpy as np
import pytest

from nlbsuite.data import phase_data_from_h5
from nlbsuite.errors import UserError
from nlbsuite.leaderboard import write_leaderboard
from nlbsuite.results import load_record, load_records
from nlbsuite.runner import fit_predict, load_run_model, run


def test_run_writes_record_artifact_and_leaderboard(tmp_path):
    results = tmp_path / "leaderboard" / "results"
    rec = run("smoothing", "lorenz_tiny", seed=0, results_dir=results)
    path = results / f"{rec.run_id}.json"
    saved = load_record(path)
    assert saved.metrics["co-bps"] == pytest.approx(rec.metrics["co-bps"])
    assert saved.metrics["co-bps"] > 0
    for key in ("config", "config_hash", "git_commit", "date", "packages", "data_hash"):
        assert getattr(saved, key)
    assert saved.packages["numpy"] == np.__version__
    model = load_run_model(path)
    assert model.n_parameters() == saved.n_parameters
    md = write_leaderboard(results)
    text = md.read_text()
    assert "## lorenz_tiny_20 (val phase)" in text and "smoothing" in text
    assert (md.parent / "leaderboard.csv").read_text().count("smoothing") >= 3


def test_finished_run_is_not_redone_unless_overwrite(tmp_path):
    first = run("mean_rate", "lorenz_tiny", results_dir=tmp_path)
    again = run("mean_rate", "lorenz_tiny", results_dir=tmp_path)
    assert again.date == first.date
    redone = run("mean_rate", "lorenz_tiny", results_dir=tmp_path, overwrite=True)
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert redone.metrics == pytest.approx(first.metrics)


def test_true_rates_score_the_ceiling_and_mean_rate_scores_about_zero(tiny_lorenz):
    from nlbsuite.evaluation import evaluate

    truth = evaluate(tiny_lorenz, tiny_lorenz.truth.as_rates())
    assert truth["co-bps"] == pytest.approx(truth["ceiling co-bps"])
    mean = fit_predict("mean_rate", tiny_lorenz).rates
    scores = evaluate(tiny_lorenz, mean)
    assert abs(scores["co-bps"]) < 0.03
    assert scores["co-bps"] < truth["co-bps"] - 0.2


def test_model_input_hides_targets(tiny_lorenz):
    seen = tiny_lorenz.model_input()
    assert seen.target is None and seen.truth is None and seen.eval_spikes_heldout is None
    assert tiny_lorenz.target is not None  # the original is untouched


def test_real_mc_maze_small_val_smoothing_scores_positive(mc_maze_small_val, tmp_path):
    data = phase_data_from_h5(mc_maze_small_val)
    assert (data.dataset, data.phase, data.bin_width_ms) == ("mc_maze_small", "val", 5)
    assert data.eval_spikes_heldin.shape == (25, 140, 107)
    rec = run("smoothing", data, results_dir=tmp_path)
    assert 0.05 < rec.metrics["co-bps"] < 0.5


def test_corrupted_result_json_is_a_clear_error(tmp_path):
    run("mean_rate", "lorenz_tiny", results_dir=tmp_path)
    path = next(tmp_path.glob("*.json"))
    path.write_text(path.read_text()[:50])
    with pytest.raises(UserError, match="not a valid result JSON"):
        load_records(tmp_path)
    path.write_text(json.dumps({"model": "x"}))
    with pytest.raises(UserError, match="missing key"):
        load_record(path)
