"""The one atomic writer: usual file mode, all-or-nothing, used by every writer."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from nlbsuite.fileio import atomic_path, atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def test_text_gets_the_usual_mode(tmp_path, umask_022):
    path = atomic_write_text(tmp_path / "sub" / "a.json", "{}\n")
    assert path.read_text() == "{}\n"
    assert _mode(path) == umask_022  # 0666 minus umask, not mkstemp's 0600


def test_mode_follows_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "c.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_disk_full_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "d.txt"
    target.write_text("earlier result")

    def full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "new")
    assert target.read_text() == "earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["d.txt"]


def test_no_other_module_writes_files_by_hand():
    """mkstemp/os.replace appear only in fileio.py: every writer goes through it."""
    pattern = re.compile(r"mkstemp|os\.replace|\.replace\(tmp|os\.rename")
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("nlbsuite", "baselines")
        for p in (ROOT / folder).rglob("*.py")
        if p.name != "fileio.py" and pattern.search(p.read_text())
    ]
    # prepare.synthetic_paths renames a finished *folder* into place (all or nothing)
    assert offenders == ["nlbsuite/nlb/prepare.py"], offenders


def test_every_file_a_run_writes_has_the_usual_mode(tmp_path, umask_022):
    """Record, leaderboard README/CSV and pickled model: 0644 under umask 022 (was 0600)."""
    from nlbsuite.leaderboard import write_leaderboard
    from nlbsuite.runner import run

    results = tmp_path / "leaderboard" / "results"
    run("mean_rate", "lorenz_tiny", results_dir=results)
    write_leaderboard(results)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".json", ".md", ".csv", ".pkl"}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o644 for p in files}
