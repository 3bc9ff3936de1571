"""Fault campaign for runs: killed runs, concurrent writers, corrupt records and cache
entries, a full disk. Nothing recorded may be partial or lost, and a rerun must give the
numbers of an uninterrupted run. Small data: ``lorenz_tiny`` and ``mean_rate``."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nlbsuite.cli import main
from nlbsuite.errors import UserError
from nlbsuite.leaderboard import (
    aggregate,
    current_code,
    render_csv,
    render_markdown,
    write_leaderboard,
)
from nlbsuite.results import load_records
from nlbsuite.runner import run

REPO = Path(__file__).resolve().parents[1]

# A run in a child process. mean_rate needs no torch (blocked: a shorter start-up). The fit
# and every file write (half the bytes, then the rest) announce themselves on stdout and
# pause, so the parent can SIGKILL the child inside them.
CHILD = """
import pathlib, sys, time
sys.modules["torch"] = None
from baselines.mean_rate import MeanRate
from nlbsuite.leaderboard import write_leaderboard
from nlbsuite.runner import run

results, pause = sys.argv[1], float(sys.argv[2])
real_fit = MeanRate.fit

def slow_fit(self, data):
    print("fit", flush=True)
    time.sleep(pause)
    real_fit(self, data)

def slow_write(self, data):
    print("write", self.name, flush=True)
    with open(self, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(pause)
        f.write(data[len(data) // 2 :])
    return len(data)

MeanRate.fit = slow_fit
pathlib.Path.write_bytes = slow_write
run("mean_rate", "lorenz_tiny", results_dir=results, log=None)
write_leaderboard(results)
print("done", flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, float]:
    """Metrics of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("reference")
    return run("mean_rate", "lorenz_tiny", results_dir=folder, log=None).metrics


def _kill_at(results: Path, marker: int, delay: float, pause: float) -> list[str]:
    """Start a child run, SIGKILL it ``delay`` s after its ``marker``-th announcement
    (0: the fit, 1..5: the writes of model, figure data, record, README, CSV). Returns what it said."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(results), str(pause)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    said = []
    for line in proc.stdout:
        said.append(line.strip())
        if len(said) == marker + 1:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, said  # killed, not finished
    return said


def _assert_nothing_partial(results: Path) -> None:
    if not results.exists():  # killed before the first write
        return
    records = load_records(results)  # every .json parses: UserError otherwise
    for rec in records:
        assert (results / rec.artifact).exists()  # a record never points to nothing
    for name in ("README.md", "leaderboard.csv"):
        path = results.parent / name
        if path.exists():  # written after the record: complete and current
            assert path.read_text() == (render_markdown if name == "README.md" else render_csv)(
                aggregate(records), current_code()
            )
    leftovers = [p.name for p in results.parent.rglob("*") if p.is_file()]
    expected = {"README.md", "leaderboard.csv", ".lock"}
    for name in leftovers:  # a killed write leaves only its hidden temporary file
        assert name in expected or name.endswith((".json", ".pkl", ".npz", ".tmp")), name
        assert not name.endswith(".tmp") or name.startswith("."), name


def test_sigkill_during_fit_and_writes_leaves_nothing_partial_and_rerun_equals(tmp_path, reference):
    rng = random.Random(12)
    pause = 1.0
    plan = [(0, rng.uniform(0, 0.8 * pause)) for _ in range(4)]  # during fit
    plan += [(rng.randint(1, 5), rng.uniform(0, 0.8 * pause)) for _ in range(6)]  # writes
    said: dict[int, list[str]] = {}

    def kill(i: int, marker: int, delay: float) -> None:
        said[i] = _kill_at(tmp_path / f"k{i}" / "results", marker, delay, pause)

    threads = [threading.Thread(target=kill, args=(i, *p)) for i, p in enumerate(plan)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(said) == len(plan) == 10  # ten kills, each inside the planned step
    kinds = {".pkl": "model", ".npz": "figures", ".json": "record", ".md": "README", ".csv": "CSV"}
    where = [
        "fit" if said[i][-1] == "fit" else kinds[Path(said[i][-1].rsplit(".", 2)[0]).suffix]
        for i in range(len(plan))
    ]
    assert where.count("fit") == 4 and len(set(where)) >= 4, where
    reused = 0
    for i in range(len(plan)):
        results = tmp_path / f"k{i}" / "results"
        _assert_nothing_partial(results)
        notes = []
        rec = run("mean_rate", "lorenz_tiny", results_dir=results, log=notes.append)
        assert rec.metrics == reference
        reused += bool(notes)  # killed after its record was whole: reused, not refitted
        assert notes in (
            [],
            [f"reused {results / rec.run_id}.json; --overwrite (overwrite=True) to refit"],
        )
        write_leaderboard(results)
        _assert_nothing_partial(results)
        assert len(load_records(results)) == 1
    print(f"\n{len(plan)} SIGKILLs during: {', '.join(where)}; {reused} reruns reused the record")


# Two writers into one results folder, each recording three runs and rewriting the leaderboard
# after each. At the end the race is forced: writer A lists the records for its last table,
# then waits until writer B has saved its last record and (for at most 3 s) written its
# table. Without the results lock A would then write a table that misses B's last record.
WRITER = """
import pathlib, sys, time
sys.modules["torch"] = None
import nlbsuite.leaderboard as lb
from nlbsuite.runner import run

results, me, seeds = pathlib.Path(sys.argv[1]), sys.argv[2], [int(s) for s in sys.argv[3:]]
flags = results.parent
real_aggregate = lb.aggregate

def wait_for(name, seconds):
    deadline = time.monotonic() + seconds
    while not (flags / name).exists() and time.monotonic() < deadline:
        time.sleep(0.02)

def aggregate_then_wait(records):
    (flags / "A-listed").touch()
    wait_for("B-saved", 120)
    wait_for("B-done", 3)
    return real_aggregate(records)

for seed in seeds:
    last = seed == seeds[-1]
    if me == "B" and last:
        wait_for("A-listed", 120)
    run("mean_rate", "lorenz_tiny", seed=seed, results_dir=results, log=None)
    if me == "A" and last:
        lb.aggregate = aggregate_then_wait
    if me == "B" and last:
        (flags / "B-saved").touch()
    lb.write_leaderboard(results)
(flags / f"{me}-done").touch()
"""


def test_two_writers_lose_no_record_and_leave_a_complete_leaderboard(tmp_path):
    results = tmp_path / "results"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(results), me, *seeds],
            env=_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, seeds in (("A", ["0", "2", "4"]), ("B", ["1", "3", "5"]))
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    records = load_records(results)
    assert sorted(r.seed for r in records) == [0, 1, 2, 3, 4, 5]  # none lost
    tables, current = aggregate(records), current_code()
    assert (tmp_path / "README.md").read_text() == render_markdown(tables, current)
    assert (tmp_path / "leaderboard.csv").read_text() == render_csv(tables, current)
    print("\n2 processes, 6 records and 6 leaderboard writes at once: none lost")


# ----------------------------------------------------------------------------------------
# Corrupt or truncated result JSONs
# ----------------------------------------------------------------------------------------


def _corruptions(good: bytes, n: int = 24, seed: int = 3) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    out = [
        ("empty", b""),
        ("garbage", bytes(rng.randrange(256) for _ in range(64))),
        ("array", b"[1, 2]"),
        ("null", b"null"),
        ("deep", b"[" * 100_000 + b"]" * 100_000),
    ]
    for _ in range(n // 2):
        cut = rng.randrange(1, len(good))
        out.append((f"truncated at {cut}", good[:cut]))
    for _ in range(n - n // 2):
        at = rng.randrange(len(good))
        out.append(
            (f"byte {at} replaced", good[:at] + bytes([rng.randrange(32, 127)]) + good[at + 1 :])
        )
    return out


def test_corrupt_result_jsons_are_one_line_naming_the_file(tmp_path, capsys):
    folder = tmp_path / "results"
    rec = run("mean_rate", "lorenz_tiny", results_dir=folder, log=None)
    path = folder / f"{rec.run_id}.json"
    good = path.read_bytes()
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "r.json").write_bytes(good)
    refused = loaded = 0
    cases = _corruptions(good)
    for what, raw in cases:
        path.write_bytes(raw)
        try:
            load_records(folder)
            loaded += 1  # still a valid record (e.g. a digit changed): read as such
        except UserError as exc:
            refused += 1
            assert str(exc).startswith(str(path)) and "\n" not in str(exc), (what, exc)
        for argv in (
            ["leaderboard", "--results", str(folder)],
            ["compare", str(tmp_path / "base"), str(folder)],
        ):
            code = main(argv)
            err = capsys.readouterr().err
            assert code in (0, 1, 2), (what, argv)
            if code == 2:
                assert err.count("\n") == 1 and str(path) in err, (what, err)
    print(f"\n{len(cases)} corrupt result files: {refused} refused in one line, {loaded} valid")
    assert refused >= len(cases) - 8 and len(cases) == 29


def test_run_replaces_a_corrupt_record_of_the_same_run_and_says_so(tmp_path, capsys):
    results = tmp_path / "results"
    argv = ["run", "--model", "mean_rate", "--dataset", "lorenz_tiny", "--results", str(results)]
    assert main(argv) == 0
    (path,) = results.glob("*.json")
    first = json.loads(path.read_text())
    capsys.readouterr()
    path.write_text(path.read_text()[:200])  # truncated
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"rerunning: {path}: not a valid result JSON" in out and "replacing it" in out
    again = json.loads(path.read_text())
    assert again["metrics"] == first["metrics"] and again["date"] >= first["date"]
    assert main(argv) == 0
    assert f"reused {path}; --overwrite" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------
# Corrupt prepared-data cache entries
# ----------------------------------------------------------------------------------------


def _same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, n), getattr(b, n))
        for n in ("train_spikes_heldin", "train_spikes_heldout", "eval_spikes_heldin")
    ) and np.array_equal(a.target.eval_spikes_heldout, b.target.eval_spikes_heldout)


def test_corrupt_cache_entries_are_detected_never_a_traceback(tmp_path, monkeypatch, tiny_lorenz):
    from nlbsuite.nlb import cache

    monkeypatch.setenv("NLBSUITE_CACHE", str(tmp_path))
    data = type(tiny_lorenz)(**{**tiny_lorenz.__dict__, "meta": {}})  # NLB-like meta
    key = "lorenz_tiny_20ms_val_seed0_0123456789abcdef01234567"
    entry = cache.store(key, data)
    good = entry.read_bytes()
    assert _same(cache.load(key), data)
    rng = random.Random(5)
    cases = [("empty", b""), ("garbage", bytes(rng.randrange(256) for _ in range(4096)))]
    cases += [(f"truncated at {c}", good[:c]) for c in rng.sample(range(1, len(good)), 15)]
    for at in rng.sample(range(len(good)), 40):
        raw = bytearray(good)
        raw[at] ^= 1 << rng.randrange(8)
        cases.append((f"bit flip at {at}", bytes(raw)))
    other = cache.store(key[:-1] + "8", data)  # a valid entry of another key
    cases.append(("entry of another key", other.read_bytes()))
    detected = 0
    for what, raw in cases:
        entry.write_bytes(raw)
        loaded = cache.load(key)  # never raises
        if loaded is None:
            detected += 1
            assert not entry.exists(), what  # deleted, so it is rebuilt
        else:  # a flip outside the stored arrays (zip bookkeeping): the data are intact
            assert _same(loaded, data), what
    print(f"\n{len(cases)} corrupt cache entries: {detected} detected and deleted")
    assert detected >= len(cases) - 10


@pytest.mark.parametrize("memo", [b"[1, 2]", b"{not json", b'{"x": 1}', b'{"%s": {"stamp": 1}}'])
def test_corrupt_digest_memo_is_recomputed(tmp_path, monkeypatch, memo):
    from nlbsuite.nlb import cache

    monkeypatch.setenv("NLBSUITE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "source.nwb"
    source.write_bytes(b"spikes" * 100)
    expected = cache.file_digest(source)
    memo_path = tmp_path / "cache" / "digests.json"
    memo_path.write_bytes(memo.replace(b"%s", str(source.resolve()).encode()))
    assert cache.file_digest(source) == expected
    assert json.loads(memo_path.read_text())[str(source.resolve())]["sha256"] == expected


# ----------------------------------------------------------------------------------------
# A full disk
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fails", ["seed1.json", "seed1.pkl", "seed1.npz", "README.md"])
def test_full_disk_is_one_line_and_leaves_earlier_results_intact(
    tmp_path, monkeypatch, capsys, fails
):
    results = tmp_path / "results"
    base = ["run", "--model", "mean_rate", "--dataset", "lorenz_tiny", "--results", str(results)]
    assert main([*base, "--seed", "0"]) == 0

    def files() -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"}

    before = files()
    capsys.readouterr()
    real_write = Path.write_bytes

    def full_disk(self, data):
        if fails in self.name:  # the temporary file beside the target: half, then full
            real_write(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    assert main([*base, "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fails in err and "no space left on device" in err, err
    after = files()
    assert {p: after.get(p) for p in before} == before  # earlier results intact
    new = sorted(p.name for p in set(after) - set(before))
    if fails == "README.md":  # the run's record is whole; the old tables stay whole
        assert [n.rsplit("__", 1)[1] for n in new] == ["seed1.json", "seed1.npz", "seed1.pkl"]
    else:  # no record, no model file, no temporary file
        assert new == []
