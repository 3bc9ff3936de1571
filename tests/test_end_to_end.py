"""The spine end to end: data -> model -> rates -> evaluator -> record -> leaderboard."""

import hashlib
import json
from pathlib import Path

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


@pytest.fixture
def fit_calls(monkeypatch):
    """Counts MeanRate.fit calls: a reused run fits nothing."""
    from baselines.mean_rate import MeanRate

    calls = []
    real_fit = MeanRate.fit

    def counting_fit(self, data):
        calls.append(self.seed)
        real_fit(self, data)

    monkeypatch.setattr(MeanRate, "fit", counting_fit)
    return calls


def test_finished_run_is_reused_and_says_so_unless_overwrite(tmp_path, fit_calls):
    said = []
    first = run("mean_rate", "lorenz_tiny", results_dir=tmp_path, log=said.append)
    assert fit_calls == [0] and said == []
    again = run("mean_rate", "lorenz_tiny", results_dir=tmp_path, log=said.append)
    assert fit_calls == [0]  # not refitted
    assert again == first
    path = tmp_path / f"{first.run_id}.json"
    assert said == [f"reused {path}; --overwrite (overwrite=True) to refit"]
    redone = run("mean_rate", "lorenz_tiny", results_dir=tmp_path, overwrite=True, log=None)
    assert fit_calls == [0, 0]
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert redone.metrics == pytest.approx(first.metrics)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("code", "model code changed since"),
        ("version", "nlbsuite changed (0.1.0 -> 9.9.9) since"),
        ("no fingerprint", "has no model code fingerprint (an older record)"),
        ("data", "data changed since"),
        ("corrupt", "not a valid result JSON"),
    ],
)
def test_stale_or_corrupt_record_is_rerun_and_says_why(
    tmp_path, fit_calls, monkeypatch, tiny_lorenz, change, reason
):
    first = run("mean_rate", tiny_lorenz, results_dir=tmp_path, log=None)
    path = tmp_path / f"{first.run_id}.json"
    data = tiny_lorenz
    if change == "code":
        monkeypatch.setattr("nlbsuite.runner.code_fingerprint", lambda cls: "edited")
    elif change == "version":
        monkeypatch.setattr("nlbsuite.runner.__version__", "9.9.9")
    elif change == "no fingerprint":
        path.write_text(path.read_text().replace(first.code_fingerprint, ""))
    elif change == "data":
        spikes = data.train_spikes_heldin.copy()
        spikes[0, 0, 0] += 1
        data = type(data)(**{**data.__dict__, "train_spikes_heldin": spikes})
    else:
        path.write_text(path.read_text()[:100])  # truncated
    said = []
    rec = run("mean_rate", data, results_dir=tmp_path, log=said.append)
    assert fit_calls == [0, 0]
    assert len(said) == 1 and said[0].startswith("rerunning: ") and reason in said[0], said
    assert str(path) in said[0]
    assert load_record(path).date == rec.date and load_record(path).data_hash == rec.data_hash


def test_code_fingerprint_covers_the_models_package(tmp_path, monkeypatch):
    """A model in baselines/<name>/ is fingerprinted over every .py file of that package."""
    import sys
    import types

    from nlbsuite.provenance import code_fingerprint

    pkg = tmp_path / "baselines" / "toy"
    pkg.mkdir(parents=True)
    for name, text in {"__init__.py": "", "model.py": "A = 1\n", "helper.py": "B = 2\n"}.items():
        (pkg / name).write_text(text)
    (tmp_path / "baselines" / "other.py").write_text("C = 3\n")
    for mod, file in (("baselines.toy", "__init__.py"), ("baselines.toy.model", "model.py")):
        module = types.ModuleType(mod)
        module.__file__ = str(pkg / file)
        monkeypatch.setitem(sys.modules, mod, module)
    toy = type("Toy", (), {"__module__": "baselines.toy.model"})
    before = code_fingerprint(toy)
    (tmp_path / "baselines" / "other.py").write_text("C = 4\n")  # another model: no change
    assert code_fingerprint(toy) == before
    (pkg / "helper.py").write_text("B = 3\n")  # a helper of this model: changed
    assert code_fingerprint(toy) != before
    single = type("Single", (), {"__module__": __name__})  # a module file: that file
    expected = hashlib.sha256(b"test_end_to_end.py\0" + Path(__file__).read_bytes() + b"\0")
    assert code_fingerprint(single) == expected.hexdigest()


def test_true_rates_score_the_ceiling_and_mean_rate_scores_about_zero(tiny_lorenz):
    from nlbsuite.scoring import evaluate

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
