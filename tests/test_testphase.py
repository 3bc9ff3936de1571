"""Test-phase runs (train on train + val, predict the test trials, score against the
released targets or --target), the no-selection-on-test rule, multi-dataset submissions."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from nlbsuite import testtargets
from nlbsuite.cli import main
from nlbsuite.errors import UserError
from nlbsuite.leaderboard import aggregate
from nlbsuite.nlb import load_nlb
from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic
from nlbsuite.results import load_records
from nlbsuite.runner import run, submit
from nlbsuite.selection import forbid_test_selection
from nlbsuite.submission import read_submission, score_file, write_target
from nlbsuite.testphase import (
    FORWARD_NOTE,
    TRAIN_ORDER_NOTE,
    load_test_phase,
    stand_in_target,
    test_phase_from_tensors,
)

FIXED = {"kern_sd_ms": 50.0, "alpha": 0.01}  # no cross-validation: fast and deterministic


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Data dir (where fetched targets would be), cache and runs in the test's folder."""
    monkeypatch.setenv("NLBSUITE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NLBSUITE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A synthetic MC_Maze-layout session (train + test NWB) with MC_Maze_Small's neurons."""
    spec = SyntheticSpec(layout="mc_maze", n_trials=30, n_neurons=142, heldout_fraction=35 / 142)
    return write_synthetic(tmp_path_factory.mktemp("session"), spec)


def test_test_phase_trains_on_train_and_val_and_predicts_test_trials(session):
    val = load_nlb("mc_maze_small", "val", 5, nwb_paths=session, use_cache=False)
    data = load_test_phase("mc_maze_small", 5, nwb=session)
    assert data.phase == "test" and data.target is None  # nothing hidden is loaded
    n_test = len(data.eval_spikes_heldin)
    assert len(data.train_spikes_heldin) == len(val.train_spikes_heldin) + len(
        val.eval_spikes_heldin
    )
    assert n_test == 6 and data.eval_spikes_heldout is None
    assert (data.n_heldin, data.n_heldout, data.n_bins) == (107, 35, 140)
    assert data.truth is not None and data.truth.eval_rates_heldout.shape == (n_test, 140, 35)


def test_test_phase_run_scores_against_the_target_and_records_its_sha(session, tmp_path):
    data = load_test_phase("mc_maze_small", 5, nwb=session)
    target = write_target(tmp_path / "t.h5", {data.key: stand_in_target(data, seed=3)})
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    results = tmp_path / "results"
    rec = run("smoothing", data, overrides=FIXED, target=target, results_dir=results, log=None)
    assert (rec.phase, rec.target_sha256, rec.phase_label) == ("test", sha, f"test@{sha[:8]}")
    assert rec.run_id.startswith("mc_maze_small__test@")
    assert np.isfinite(rec.metrics["co-bps"])
    # the target is drawn from the test trials' true rates: they score well (alignment)
    assert rec.metrics["ceiling co-bps"] > 0.2 > rec.metrics["co-bps"]
    # the written submission, scored as nlb_tools would, gives the record's number
    sub = (results / rec.submission).resolve()
    assert list(read_submission(sub)) == ["mc_maze_small"]
    scored = score_file(sub, target).scores["mc_maze_small"].metrics["co-bps"]
    assert scored == pytest.approx(rec.metrics["co-bps"], abs=1e-6)  # float32 file vs float64
    # own table, never mixed with val runs
    val = load_nlb("mc_maze_small", "val", 5, nwb_paths=session, use_cache=False)
    run("smoothing", val, overrides=FIXED, results_dir=results, log=None)
    tables = aggregate(load_records(results))
    assert sorted(tables) == [("mc_maze_small", "test@" + sha[:8]), ("mc_maze_small", "val")]
    # same run again: reused; against another target file: a separate run
    again = run("smoothing", data, overrides=FIXED, target=target, results_dir=results, log=None)
    assert (again.run_id, again.date, again.metrics) == (rec.run_id, rec.date, rec.metrics)
    other = write_target(tmp_path / "t2.h5", {data.key: stand_in_target(data, seed=4)})
    rec2 = run("smoothing", data, overrides=FIXED, target=other, results_dir=results, log=None)
    assert rec2.run_id != rec.run_id and len(load_records(results)) == 3


def test_without_targets_the_submission_is_written_and_nothing_recorded(
    session, tmp_path, capsys
):
    results = tmp_path / "results"
    argv = ["run", "--model", "smoothing", "--dataset", "mc_maze_small", "--phase", "test"]
    argv += ["--nwb", *map(str, session), "--set", "kern_sd_ms=50.0", "--set", "alpha=0.01"]
    assert main([*argv, "--results", str(results)]) == 0
    out = capsys.readouterr().out.splitlines()
    hint = [line for line in out if "nlbsuite fetch test-targets" in line]
    assert len(hint) == 1 and hint[0].startswith("wrote ") and "--target FILE" in hint[0]
    assert not list(results.glob("*.json"))  # no record without a score
    subs = list((tmp_path / "runs").glob("*.h5"))
    assert len(subs) == 1 and subs[0].name.startswith("mc_maze_small__test__smoothing")
    groups = read_submission(subs[0])["mc_maze_small"]
    assert groups["eval_rates_heldout"].shape == (6, 140, 35)


def test_test_nwb_alone_is_refused_with_what_to_give(session, capsys):
    argv = ["run", "--dataset", "mc_maze_small", "--phase", "test", "--nwb", str(session[1])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no train trials" in err and "--nwb TRAIN.nwb TEST.nwb" in err


def test_val_tensor_file_is_refused_for_the_test_phase(tiny_lorenz, tmp_path, capsys):
    from nlbsuite.catalog import DatasetKey
    from nlbsuite.nlb.prepare import write_h5_atomic

    path = tmp_path / "lorenz_val_tensors.h5"
    write_h5_atomic(
        path,
        {
            k: getattr(tiny_lorenz, k)
            for k in ("train_spikes_heldin", "train_spikes_heldout", "eval_spikes_heldin")
        }
        | {"eval_spikes_heldout": tiny_lorenz.target.eval_spikes_heldout},
    )
    assert str(DatasetKey("lorenz", 20)) == "lorenz_20"
    assert main(["run", "--data", str(path), "--phase", "test"]) == 2
    err = capsys.readouterr().err
    assert "a val-phase tensor file" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------------------
# Real MC_Maze_Small: val tensors (75 train + 25 val trials) + the genuine test NWB
# ----------------------------------------------------------------------------------------


def test_tensors_plus_test_nwb_build_the_test_phase(mc_maze_small_val, mc_maze_small_test_nwb):
    data = test_phase_from_tensors(mc_maze_small_val, [mc_maze_small_test_nwb])
    assert data.key == "mc_maze_small" and data.phase == "test"
    assert data.train_spikes_heldin.shape == (100, 140, 107)
    assert data.train_spikes_heldout.shape == (100, 140, 35)
    assert data.eval_spikes_heldin.shape == (100, 140, 107)
    assert data.n_forward == 0 and data.train_behavior is None
    assert data.meta["notes"] == [TRAIN_ORDER_NOTE, FORWARD_NOTE]
    d20 = load_test_phase(None, 20, nwb=[mc_maze_small_test_nwb], tensors=mc_maze_small_val)
    assert d20.train_spikes_heldout.shape == (100, 35, 35)
    assert d20.eval_spikes_heldin.shape == (100, 35, 107)
    np.testing.assert_array_equal(
        d20.eval_spikes_heldin, data.eval_spikes_heldin.reshape(100, 35, 4, 107).sum(2)
    )
    assert data.eval_spikes_heldin.sum() > 10_000  # real spikes


def test_released_targets_are_found_once_fetched(
    mc_maze_small_val, mc_maze_small_test_nwb, tmp_path, monkeypatch
):
    """A layout-only stand-in (nlb_tools' layout at MC_Maze_Small's test sizes, synthetic
    values) placed where 'nlbsuite fetch test-targets' puts the file and accepted as if it
    had the released checksum: the run finds it, checks its group and records 'test'."""
    data = test_phase_from_tensors(mc_maze_small_val, [mc_maze_small_test_nwb])
    path = tmp_path / "data" / "nlb_test_targets" / testtargets.FILE_NAME
    path.parent.mkdir(parents=True)
    write_target(path, {data.key: stand_in_target(data)})
    monkeypatch.setattr(testtargets, "SIZE", path.stat().st_size)
    monkeypatch.setattr(testtargets, "SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    rec = run("mean_rate", data, results_dir=tmp_path / "results", log=None)
    assert rec.phase_label == "test" and rec.target_sha256 == testtargets.SHA256
    assert set(rec.metrics) == {"co-bps", "psth R2"}  # no vel R2 / fp-bps on this data
    assert rec.notes == [TRAIN_ORDER_NOTE, FORWARD_NOTE]
    assert rec.data_source == (
        "mc_maze_small_val_tensors.h5 (train + val trials), "
        "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    )
    shutil.copy(path, tmp_path / "copy.h5")  # a wrong-sized released file is refused
    with h5py.File(path, "a") as f:
        f["extra"] = np.zeros(1000)
    with pytest.raises(UserError, match="refusing to use it"):
        run("mean_rate", data, results_dir=tmp_path / "results", log=None, overwrite=True)


def test_cli_test_phase_from_tensors_and_test_nwb(
    mc_maze_small_val, mc_maze_small_test_nwb, tmp_path, capsys
):
    data = test_phase_from_tensors(mc_maze_small_val, [mc_maze_small_test_nwb], bin_width_ms=20)
    target = write_target(tmp_path / "t.h5", {data.key: stand_in_target(data)})
    argv = ["run", "--model", "mean_rate", "--phase", "test", "--data", str(mc_maze_small_val)]
    argv += ["--nwb", str(mc_maze_small_test_nwb), "--bin", "20", "--target", str(target)]
    assert main([*argv, "--results", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "mc_maze_small_20 (test): 100 train / 100 eval trials x 35 bins (+0 forward)" in out
    assert f"note: {TRAIN_ORDER_NOTE}" in out and "seed 0: co-bps " in out
    (rec,) = load_records(tmp_path / "results")
    assert (rec.dataset_key, rec.phase, set(rec.metrics)) == (
        "mc_maze_small_20",
        "test",
        {"co-bps", "psth R2"},
    )


# ----------------------------------------------------------------------------------------
# No selection on test; one submission file for several datasets
# ----------------------------------------------------------------------------------------


def test_selection_refuses_the_test_phase():
    forbid_test_selection("val", "nlbsuite tune")
    with pytest.raises(UserError) as err:
        forbid_test_selection("test", "nlbsuite tune")
    msg = str(err.value)
    assert msg.startswith("nlbsuite tune selects a configuration") and "\n" not in msg
    assert "val phase" in msg and "nlbsuite run --phase test" in msg


def test_submit_writes_several_groups_in_one_validated_file(session, tiny_lorenz, tmp_path):
    datasets = [
        load_nlb("mc_maze_small", "val", 5, nwb_paths=session, use_cache=False),
        load_nlb("mc_maze_small", "val", 20, nwb_paths=session, use_cache=False),
        tiny_lorenz,
    ]
    out = submit(
        "smoothing", datasets, tmp_path / "s.h5", overrides=FIXED, progress=False, log=None
    )
    assert out.ok and out.keys == ["mc_maze_small", "mc_maze_small_20", "lorenz_tiny_20"]
    groups = read_submission(out.path)
    assert sorted(groups) == sorted(out.keys)
    assert groups["mc_maze_small_20"]["eval_rates_heldout"].shape[1:] == (35, 35)
    assert all(a.dtype == np.float32 for g in groups.values() for a in g.values())
    with pytest.raises(UserError, match="given twice"):
        submit("smoothing", datasets[:1] * 2, tmp_path / "x.h5", overrides=FIXED, log=None)
    assert not (tmp_path / "x.h5").exists()  # nothing written


def test_cli_submit_several_datasets_into_one_file(tmp_path, capsys):
    argv = ["submit", "--model", "mean_rate", "--preset", "smoke", "--out", str(tmp_path)]
    assert main([*argv, "--dataset", "lorenz_tiny", "lorenz"]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "mean_rate_val.h5"
    assert f"wrote {path} (groups: lorenz_tiny_20, lorenz_20)" in out
    assert sorted(read_submission(path)) == ["lorenz_20", "lorenz_tiny_20"]


def test_submit_checks_the_test_phase_trial_counts(session, tmp_path):
    data = load_test_phase("mc_maze_small", 5, nwb=session)  # 6 test trials, not 100
    out = submit("smoothing", [data], tmp_path / "s.h5", overrides=FIXED, log=None)
    assert not out.ok
    errors = {p.where: p.message for p in out.problems if p.severity == "error"}
    assert errors["mc_maze_small/eval_rates_heldout"] == (
        "6 trials; the mc_maze_small test phase has 100"
    )
    n_train = len(data.train_spikes_heldin)
    assert errors["mc_maze_small/train_rates_heldin"] == (
        f"{n_train} trials; the mc_maze_small test phase has 100"
    )
