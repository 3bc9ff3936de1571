"""The prepared-tensor cache: hits are identical and fast, corrupt or stale entries rebuild."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from nlbsuite.nlb import cache, load_nlb
from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic


@pytest.fixture()
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    monkeypatch.setenv("NLBSUITE_CACHE", str(tmp_path / "cache"))
    return write_synthetic(
        tmp_path / "nwb", SyntheticSpec(layout="area2_bump", n_trials=24, n_neurons=10, seed=2)
    )


def _entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache").glob("*.npz"))


def _assert_equal(a, b) -> None:
    for name in (
        "train_spikes_heldin",
        "train_spikes_heldout",
        "eval_spikes_heldin",
        "train_behavior",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.target.psth, b.target.psth)
    np.testing.assert_array_equal(a.target.train_decode_mask, b.target.train_decode_mask)
    assert len(a.target.eval_cond_idx) == len(b.target.eval_cond_idx)
    for x, y in zip(a.target.eval_cond_idx, b.target.eval_cond_idx, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.truth.eval_rates_heldout, b.truth.eval_rates_heldout)


def test_second_load_is_a_cache_hit(session: list[Path], tmp_path: Path) -> None:
    first = load_nlb("area2_bump", "val", 20, nwb_paths=session)
    assert len(_entries(tmp_path)) == 1
    start = time.perf_counter()
    second = load_nlb("area2_bump", "val", 20, nwb_paths=session)
    assert time.perf_counter() - start < 0.5
    _assert_equal(first, second)
    assert second.meta["cache_key"] == first.meta["cache_key"]
    assert not list((tmp_path / "cache").glob(".*tmp*"))  # no temporary files left


def test_corrupt_entry_is_detected_and_rebuilt(session: list[Path], tmp_path: Path) -> None:
    first = load_nlb("area2_bump", "val", 20, nwb_paths=session)
    entry = _entries(tmp_path)[0]
    raw = bytearray(entry.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip a byte inside the stored arrays
    entry.write_bytes(bytes(raw))
    assert cache.load(first.meta["cache_key"]) is None
    assert not entry.exists()
    again = load_nlb("area2_bump", "val", 20, nwb_paths=session)
    _assert_equal(first, again)
    # a truncated entry too
    entry = _entries(tmp_path)[0]
    entry.write_bytes(entry.read_bytes()[:1000])
    _assert_equal(first, load_nlb("area2_bump", "val", 20, nwb_paths=session))


def test_changed_source_file_makes_entry_stale(session: list[Path], tmp_path: Path) -> None:
    first = load_nlb("area2_bump", "val", 20, nwb_paths=session)
    key = first.meta["cache_key"]
    with open(session[0], "ab") as f:  # append bytes: new content, new digest
        f.write(b"\0" * 16)
    st = session[0].stat()
    os.utime(session[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = load_nlb("area2_bump", "val", 20, nwb_paths=session)
    assert second.meta["cache_key"] != key
    assert [p.stem for p in _entries(tmp_path)] == [second.meta["cache_key"]]  # stale one removed


def test_keys_differ_by_phase_bin_seed(session: list[Path]) -> None:
    from nlbsuite.nlb.specs import get_spec

    spec = get_spec("area2_bump")
    keys = {
        cache.key_for(spec, b, p, s, session)
        for b in (5, 20)
        for p in ("val", "test")
        for s in (0, 1)
    }
    assert len(keys) == 8


def test_use_cache_false_writes_nothing(session: list[Path], tmp_path: Path) -> None:
    load_nlb("area2_bump", "test", 20, nwb_paths=session, use_cache=False)
    assert _entries(tmp_path) == []
