"""Result records tell the truth: what ran (seed, config, preset), where the data came from
(no machine paths), which schema; old records are migrated on load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from baselines.mean_rate import MeanRate
from baselines.smoothing import Smoothing, SmoothingConfig
from nlbsuite.errors import UserError
from nlbsuite.results import (
    SCHEMA_VERSION,
    ResultRecord,
    load_record,
    load_records,
    portable_source,
)
from nlbsuite.runner import make_model, run

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "leaderboard" / "results"


# ----------------------------------------------------------------------------------------
# Defect 1: a model instance is recorded with its own seed and config
# ----------------------------------------------------------------------------------------


def test_instance_with_another_seed_or_preset_is_refused(tiny_lorenz, tmp_path):
    model = Smoothing(Smoothing.make_config("cpu"), seed=0)
    with pytest.raises(UserError, match=r"^seed=5 but the model instance was built with seed=0"):
        run(model, tiny_lorenz, seed=5, results_dir=tmp_path)
    custom = Smoothing(SmoothingConfig(kern_sd_ms=40.0), seed=0)
    with pytest.raises(UserError, match=r"^preset='paper' but .* config equals no preset"):
        run(custom, tiny_lorenz, preset="paper", results_dir=tmp_path)
    with pytest.raises(UserError, match=r"^overrides=\{'alpha': 0.1\} cannot change"):
        run(model, tiny_lorenz, overrides={"alpha": 0.1}, results_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing recorded


def test_instance_record_states_its_seed_config_and_preset(tiny_lorenz):
    custom = Smoothing(SmoothingConfig(kern_sd_ms=40.0), seed=3)
    rec = run(custom, tiny_lorenz, save=False)
    assert (rec.seed, rec.preset) == (3, "custom")  # was (0, "cpu")
    assert rec.config["kern_sd_ms"] == 40.0 and rec.config_hash == custom.config.hash()
    # an instance whose config equals a preset is recorded under it ("cpu" first)
    _, preset, seed = make_model(MeanRate(MeanRate.make_config("smoke"), seed=7))
    assert (preset, seed) == ("cpu", 7)
    _, preset, _ = make_model(Smoothing(Smoothing.make_config("cpu")), preset="cpu")
    assert preset == "cpu"
    # by name: preset and seed as asked
    _, preset, seed = make_model("smoothing", "paper", 4)
    assert (preset, seed) == ("paper", 4)


# ----------------------------------------------------------------------------------------
# Defect 7: portable data sources, schema 2, migration of schema-1 records
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "portable"),
    [
        ("/work/shared/data/x/val_tensors.h5", "val_tensors.h5"),
        ("../shared/data/x/val_tensors.h5", "val_tensors.h5"),
        ("/d/a.nwb, /d/b.nwb", "a.nwb, b.nwb"),
        (r"C:\data\a.h5", "a.h5"),
        ("C:/data/a.h5", "a.h5"),
        ("lorenz(size=default, seed=0)", "lorenz(size=default, seed=0)"),
        ("", ""),
    ],
)
def test_portable_source_keeps_file_names_only(source, portable):
    assert portable_source(source) == portable


def _schema1(**changes) -> dict:
    raw = {
        "model": "smoothing",
        "preset": "cpu",
        "config": {"kern_sd_ms": None},
        "config_hash": "4c099a7a41",
        "dataset": "mc_maze_small",
        "bin_width_ms": 5,
        "phase": "val",
        "seed": 0,
        "metrics": {"co-bps": 0.1157, "vel R2": None},
        "fit_seconds": 28.9,
        "predict_seconds": 3.2,
        "n_parameters": 9460,
        "data_source": "/work/shared/data/mc_maze_small/mc_maze_small_val_tensors.h5",
        "data_hash": "25d2",
        "nlbsuite_version": "0.1.0",
        "schema": 1,
    }
    return {**raw, **changes}


def test_schema_1_record_is_migrated_on_load(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_schema1()))
    rec = load_record(path)
    assert rec.schema == SCHEMA_VERSION == 3
    assert rec.data_source == "mc_maze_small_val_tensors.h5"
    assert (rec.target_sha256, rec.submission, rec.notes) == ("", None, [])  # 2 -> 3
    assert rec.code_fingerprint == ""  # matches no code: the run is redone if asked
    assert rec.metrics["co-bps"] == 0.1157 and rec.metrics["vel R2"] != rec.metrics["vel R2"]
    assert rec.n_parameters == 9460 and rec.data_hash == "25d2"
    again = ResultRecord.from_dict(json.loads(rec.to_json()))
    assert again == rec or again.to_json() == rec.to_json()  # schema 3 round-trips


def test_committed_records_migrate_to_the_current_schema():
    """Every record in leaderboard/results (schema 2 today) loads as schema 3 with every
    stored value unchanged and the new test-phase fields at their 'not test phase' values;
    the migrated record round-trips and keeps its run id (file name) and leaderboard row."""
    paths = sorted(COMMITTED.glob("*.json"))
    assert len(paths) >= 20
    old_schemas = set()
    for path in paths:
        raw = json.loads(path.read_text())
        old_schemas.add(raw["schema"])
        rec = load_record(path)
        assert rec.schema == SCHEMA_VERSION, path.name
        assert f"{rec.run_id}.json" == path.name
        assert rec.run_key.phase == raw["phase"] == "val"
        new = json.loads(rec.to_json())
        assert {k: v for k, v in new.items() if k in raw and k != "schema"} == {
            k: v for k, v in raw.items() if k != "schema"
        }, path.name
        assert set(new) - set(raw) <= {"target_sha256", "submission", "notes"}
        if raw["schema"] == 2:
            assert (rec.target_sha256, rec.submission, rec.notes) == ("", None, [])
        assert ResultRecord.from_dict(new) == rec
    assert old_schemas <= {2, SCHEMA_VERSION}


def test_migrate_leaves_its_input_alone_and_is_idempotent():
    from nlbsuite.results import migrate

    raw = _schema1()
    before = json.dumps(raw, sort_keys=True)
    once = migrate(raw)
    assert json.dumps(raw, sort_keys=True) == before
    assert migrate(once) == once and once["schema"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema": 4}, "schema 4 is newer than this nlbsuite (reads up to 3)"),
        ({"schema": "1"}, "key 'schema' must be an integer from 1 to 3"),
        ({"seed": "zero"}, "key 'seed' must be an integer"),
        ({"seed": True}, "key 'seed' must be an integer"),
        ({"metrics": [0.1]}, "key 'metrics' must be an object"),
        ({"metrics": {"co-bps": "high"}}, "key 'metrics.co-bps' must be a number"),
        ({"config": 3}, "key 'config' must be an object"),
        ({"fit_seconds": "1 s"}, "key 'fit_seconds' must be a number"),
    ],
)
def test_wrong_types_are_one_line_naming_file_and_key(tmp_path, changes, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_schema1(**changes)))
    with pytest.raises(UserError, match=re.escape(message)) as exc:
        load_records(tmp_path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)


def test_two_files_for_one_run_are_refused_not_counted_twice(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(_schema1()))
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "a.json").write_text(json.dumps(_schema1()))
    with pytest.raises(UserError, match="is also recorded in"):
        load_records(tmp_path)


def _strings(value, key=""):
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{key}.{k}" if key else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{key}[{i}]")


def test_committed_records_hold_no_machine_path():
    paths = sorted(COMMITTED.glob("*.json"))
    assert paths, f"no committed records in {COMMITTED}"
    absolute = re.compile(r"^(/|[A-Za-z]:[\\/]|\\\\)")
    offenders = [
        f"{p.name}: {key}={text!r}"
        for p in paths
        for key, text in _strings(json.loads(p.read_text()))
        if absolute.match(text) or (key == "data_source" and ("/" in text or "\\" in text))
    ]
    assert offenders == []
    assert {json.loads(p.read_text())["schema"] for p in paths} <= {2, SCHEMA_VERSION}
    assert len(load_records(COMMITTED)) == len(paths)


def test_new_record_has_portable_source_fingerprint_and_version(tiny_lorenz, tmp_path):
    from nlbsuite import __version__
    from nlbsuite.provenance import code_fingerprint

    data = tiny_lorenz
    data_copy = type(data)(**{**data.__dict__, "source": "/home/me/data/lorenz_tensors.h5"})
    rec = run("mean_rate", data_copy, results_dir=tmp_path)
    saved = json.loads((tmp_path / f"{rec.run_id}.json").read_text())
    assert saved["data_source"] == "lorenz_tensors.h5"
    assert saved["code_fingerprint"] == code_fingerprint(MeanRate) != ""
    assert saved["nlbsuite_version"] == __version__ and saved["schema"] == SCHEMA_VERSION
    assert not saved["artifact"].startswith("/")
