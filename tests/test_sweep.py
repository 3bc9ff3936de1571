"""``nlbsuite sweep`` and ``nlbsuite tune`` on Ray.

One Ray cluster for the module: ``ray start --head --block`` on 127.0.0.1, started by the
``cluster`` fixture in its own process group and stopped by signalling that group. This
process joins it as the driver for the in-process tests; the kill test's sweeps join it from
child processes with ``--address``. Ray's start-up (tens of seconds on 2 loaded cores) is
paid once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nlbsuite.cli import main
from nlbsuite.errors import UserError
from nlbsuite.results import load_records
from tests import sweep_models

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.ray
# The test cluster listens on loopback only (Ray binds a node's own address unless its
# "no real cluster" switch is set) and without Ray 2.5x's token check (no shared token).
os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The address of a 2-CPU Ray head on 127.0.0.1 that this process has joined."""
    ray = pytest.importorskip("ray")
    from nlbsuite.sweep import _start_ray

    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    address = f"127.0.0.1:{port}"
    patch = pytest.MonkeyPatch()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                _start_ray(ray, address)
                break
            except UserError:
                if time.monotonic() > deadline or head.poll() is not None:
                    raise
                time.sleep(2)
        sweep_models.register(patch)
        yield address
    finally:
        patch.undo()
        ray.shutdown()
        head.terminate()  # `ray start --block` stops its processes on SIGTERM
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def _plain_runs(models, seeds, overrides, tmp_path):
    from nlbsuite.datasets import load_dataset
    from nlbsuite.runner import run

    data = load_dataset("lorenz_tiny")
    return {
        (m, s): run(m, data, seed=s, preset="smoke", overrides=overrides.get(m), save=False,
                    log=None)
        for m in models
        for s in seeds
    }


def test_sweep_makes_the_records_of_the_same_runs_one_by_one(cluster, tmp_path):
    from nlbsuite.sweep import plan, sweep

    grid = [{"kern_sd_ms": 40.0, "alpha": 0.1}]  # fixed smoothing values: no CV, quick
    specs = plan(["smoothing"], ["lorenz_tiny"], seeds=[0, 1, 2], presets=["smoke"], grid=grid)
    specs += plan(["mean_rate"], ["lorenz_tiny"], seeds=[0, 1, 2], presets=["smoke"])
    report = sweep(specs, results_dir=tmp_path / "results", address=cluster, progress=False)
    assert report.ok and len(report.done) == 6 and not report.reused
    records = {(r.model, r.seed): r for r in load_records(tmp_path / "results")}
    plain = _plain_runs(["smoothing", "mean_rate"], [0, 1, 2], {"smoothing": grid[0]}, tmp_path)
    assert records.keys() == plain.keys()
    for key, rec in records.items():
        assert rec.metrics == plain[key].metrics, key
        assert (rec.config_hash, rec.code_fingerprint) == (
            plain[key].config_hash,
            plain[key].code_fingerprint,
        )
        assert (tmp_path / "results" / rec.artifact).exists()  # the model, from the driver
    board = (tmp_path / "README.md").read_text()
    assert "| smoothing | smoke" in board and "| 3 " in board  # 3 seeds per row
    again = sweep(specs, results_dir=tmp_path / "results", address=cluster, progress=False)
    assert len(again.reused) == 6 and not again.done  # idempotent


def test_a_failing_run_is_recorded_and_the_others_finish(cluster, tmp_path, capsys):
    results = tmp_path / "results"
    argv = ["sweep", "--models", "flaky_mean", "--datasets", "lorenz_tiny", "--seeds", "0",
            "1", "2", "--presets", "smoke", "--results", str(results)]
    assert main(argv) == 1  # some failed
    out = capsys.readouterr().out
    assert "2 run(s) done, 0 reused, 1 failed" in out and "seed 1 always fails" in out
    assert sorted(r.seed for r in load_records(results)) == [0, 2]
    (failure,) = (tmp_path / "runs" / "failed").glob("*.json")
    raw = json.loads(failure.read_text())
    assert raw["status"] == "failed" and "RuntimeError: flaky_mean" in raw["error"]
    assert raw["spec"]["seed"] == 1 and "Traceback" in raw["traceback"]


DRIVER = (
    "import sys; sys.path.insert(0, {repo!r}); from tests import sweep_models; "
    "sweep_models.register(); from nlbsuite.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_killed_sweep_on_a_cluster_resumes_without_refits_or_duplicates(cluster, tmp_path):
    results = tmp_path / "results"
    cmd = [sys.executable, "-c", DRIVER.format(repo=str(REPO))]
    slow = ["sweep", "--models", "slow_mean", "--datasets", "lorenz_tiny", "--seeds", "0", "1",
            "2", "--presets", "smoke", "--set", "sleep_s=5", "--cpus-per-run", "2",
            "--results", str(results), "--address", cluster]
    first = subprocess.Popen([*cmd, *slow], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not list(results.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # the driver dies without any clean-up
    first.wait(timeout=60)
    done = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in results.glob("*.json")}
    assert 1 <= len(done) < 3, first.stdout.read()
    second = subprocess.run([*cmd, *slow], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{len(done)} already recorded, {3 - len(done)} to run" in second.stdout
    files = sorted(results.glob("*.json"))
    assert len(files) == 3 and len({p.name for p in files}) == 3
    assert sorted(r.seed for r in load_records(results)) == [0, 1, 2]
    for name, (data, mtime) in done.items():  # the finished runs were not refit
        assert (results / name).read_bytes() == data
        assert (results / name).stat().st_mtime_ns == mtime


def test_tune_random_search_picks_the_best_val_trial_and_saves_a_usable_config(
    cluster, tmp_path
):
    from nlbsuite.runner import run
    from nlbsuite.tune import tune

    out = tmp_path / "smoothing_tuned.json"
    report = tune("smoothing", "lorenz_tiny", search="random", samples=3, preset="smoke",
                  results_dir=tmp_path / "results", out=out, log=lambda _: None)
    trials = sorted((report.study_dir / "trials").glob("*.json"))
    assert len(trials) == len(report.trials) == 3
    best = max(report.trials, key=lambda r: r.metrics["co-bps"])
    assert report.best.metrics["co-bps"] == best.metrics["co-bps"]
    assert all(r.phase == "val" for r in report.trials)
    saved = json.loads(out.read_text())
    assert saved["model"] == "smoothing" and saved["base_preset"] == "smoke"
    assert saved["overrides"] == {k: best.config[k] for k in ("alpha", "kern_sd_ms")}
    again = run("smoothing", "lorenz_tiny", preset=str(out), save=False, log=None)
    assert again.preset == "smoothing_tuned" and again.metrics == best.metrics


def test_tune_pbt_picks_the_best_val_trial_and_records_every_trial(cluster, tmp_path):
    """PBT from a config file as base: every trial runs the file's overrides (epochs 8) under
    its name, and the saved config keeps them beside the value found."""
    from nlbsuite.configfile import ConfigFile, save_config_file
    from nlbsuite.tune import tune

    base = save_config_file(tmp_path / "longer.json", ConfigFile("step_psth", "smoke", {"epochs": 8}))
    report = tune("step_psth", "lorenz_tiny", search="pbt", samples=4, iterations=2,
                  preset=str(base), results_dir=tmp_path / "results",
                  out=tmp_path / "pbt.json", log=lambda _: None)
    assert len(report.trials) == 4 and not report.failed
    # each trial's own record, also where the trial came last at the final step
    assert len({r.extras["trial"] for r in report.trials}) == 4
    assert len(list((report.study_dir / "trials").glob("*.json"))) == 4
    assert all(r.extras["steps"] == 2 for r in report.trials)
    assert all(r.config["epochs"] == 8 and r.preset == "longer" for r in report.trials)
    best = max(report.trials, key=lambda r: r.metrics["co-bps"])
    assert report.best is best
    saved = json.loads((tmp_path / "pbt.json").read_text())
    assert saved["base_preset"] == "smoke" and "--preset longer" in saved["source"]
    assert saved["overrides"] == {"epochs": 8, "lr": best.config["lr"]}


def test_tune_refuses_another_models_config_file_before_starting_ray(tmp_path, capsys):
    from nlbsuite.configfile import ConfigFile, save_config_file

    other = save_config_file(tmp_path / "g.json", ConfigFile("gpfa", "smoke", {}))
    assert main(["tune", "--model", "smoothing", "--dataset", "lorenz_tiny", "--preset",
                 str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a config of model 'gpfa', not 'smoothing'" in err


def test_tune_refuses_the_test_phase_before_starting_ray(capsys):
    assert main(["tune", "--model", "smoothing", "--dataset", "lorenz_tiny", "--phase",
                 "test"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "runs on the val phase (train/val trials) only" in err


def test_sweep_without_ray_says_how_to_install_it():
    code = (
        "import sys; sys.modules['ray'] = None; from nlbsuite.cli import main; "
        "sys.exit(main(['sweep', '--models', 'smoothing', '--datasets', 'lorenz_tiny']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == (
        'nlbsuite: error: Ray is not installed; pip install "nlbsuite[sweep]" '
        "(Ray and Ray Tune)\n"
    )
