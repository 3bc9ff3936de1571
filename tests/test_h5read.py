"""read_dataset: exactly ds[()] (values, dtype, shape), by its fast paths where they apply."""

from __future__ import annotations

import io
import mmap
import threading
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from nlbsuite import h5read
from nlbsuite.h5read import read_dataset
from nlbsuite.scoring import score_by_key
from nlbsuite.submission import write_submission
from nlbsuite.synthetic_targets import make_case


@pytest.fixture
def inflates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Fast paths for datasets of any size; the list counts chunks the gzip path inflated."""
    monkeypatch.setattr(h5read, "_MIN_NBYTES", 0)
    calls: list[int] = []
    inflate = h5read._inflate

    def counting(data: bytes, **kwargs: Any) -> bytes:
        calls.append(1)
        return inflate(data, **kwargs)

    monkeypatch.setattr(h5read, "_inflate", counting)
    return calls


def written(path: Path, data: Any, **create: Any) -> h5py.Dataset:
    """Dataset "x" holding ``data`` (h5py ``create_dataset`` options ``create``), reopened
    read-only (the file stays open until the test ends)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=data, **create)
    return h5py.File(path, "r")["x"]


def assert_same(got: Any, ds: h5py.Dataset) -> None:
    want = ds[()]
    assert type(got) is type(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == object:
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
    else:
        assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f")


def is_mapped(arr: np.ndarray) -> bool:
    """Whether ``arr`` is a view of a memory map."""
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


def grid(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Distinct values (so misplaced chunks show) of ``dtype``, the same on every call."""
    values = (
        np.arange(np.prod(shape)).reshape(shape) % 251
        + np.random.default_rng(0).random(shape) * 0.5
    )
    return values.astype(dtype)


@pytest.mark.parametrize("dtype", ["<f4", "<f8", "<i8", "<i2", "u1", ">f8", ">i4", "?"])
def test_contiguous_data_is_a_read_only_view_of_the_file(tmp_path, inflates, dtype) -> None:
    ds = written(tmp_path / "c.h5", grid((7, 30, 5), dtype))
    got = read_dataset(ds)
    assert_same(got, ds)
    assert is_mapped(got) and not got.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        got[0, 0, 0] = 1
    ds.file.close()
    assert np.array_equal(got, grid((7, 30, 5), dtype))  # the map outlives the file


def test_contiguous_data_after_a_user_block(tmp_path, inflates) -> None:
    with h5py.File(tmp_path / "u.h5", "w", userblock_size=1024) as f:
        f["x"] = grid((40, 9), "<f4")
        f.create_dataset("z", data=grid((40, 9), "<f4"), chunks=(7, 4), compression="gzip")
    f = h5py.File(tmp_path / "u.h5", "r")
    for name in ("x", "z"):
        assert_same(read_dataset(f[name]), f[name])
    assert is_mapped(read_dataset(f["x"])) and inflates


CHUNKED = [
    ((1000,), (77,)),
    ((50, 37), (8, 5)),
    ((20, 30, 7), (6, 7, 3)),
    ((9, 11, 4), (9, 11, 4)),  # one chunk
    ((3, 5, 2), (8, 8, 8)),  # chunk larger than the (resizable) data
]


@pytest.mark.parametrize("cores", [1, 3])
@pytest.mark.parametrize(("shape", "chunks"), CHUNKED)
@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i8"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_gzip_chunks_are_inflated_and_placed(
    tmp_path, inflates, monkeypatch, shape, chunks, dtype, shuffle, cores
) -> None:
    monkeypatch.setattr(h5read, "_cores", lambda: cores)
    maxshape = tuple(None if c > n else n for n, c in zip(shape, chunks, strict=True))
    data = grid(shape, dtype)
    ds = written(
        tmp_path / "g.h5",
        data,
        chunks=chunks,
        maxshape=maxshape,
        compression="gzip",
        shuffle=shuffle,
    )
    got = read_dataset(ds)
    assert_same(got, ds)
    assert len(inflates) == ds.id.get_num_chunks()
    assert got.flags.writeable and not is_mapped(got)


def test_chunks_stored_without_deflate_are_not_inflated(tmp_path, inflates) -> None:
    data = grid((12, 10), "<f8")
    with h5py.File(tmp_path / "m.h5", "w") as f:
        ds = f.create_dataset("x", data=data, chunks=(5, 10), compression="gzip")
        ds.id.write_direct_chunk((5, 0), data[5:10].tobytes(), filter_mask=1)  # deflate skipped
    ds = h5py.File(tmp_path / "m.h5", "r")["x"]
    assert [ds.id.get_chunk_info(i).filter_mask for i in range(3)] == [0, 1, 0]
    assert_same(read_dataset(ds), ds)
    assert len(inflates) == 2


def test_undecodable_chunks_are_left_to_hdf5(tmp_path, inflates, monkeypatch) -> None:
    data = grid((12, 10), "<f8")
    with h5py.File(tmp_path / "b.h5", "w") as f:
        ds = f.create_dataset("x", data=data, chunks=(5, 10), compression="gzip")
        ds.id.write_direct_chunk((5, 0), zlib.compress(data[5:7].tobytes()))  # too short
        f.create_dataset("y", data=data, chunks=(5, 10), compression="gzip")
        f["y"].id.write_direct_chunk((0, 0), b"not deflate")
    hdf5_reads: list[str] = []
    getitem = h5py.Dataset.__getitem__

    def hdf5_read(ds: h5py.Dataset, selection: Any) -> Any:
        hdf5_reads.append(ds.name)
        return getitem(ds, selection)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", hdf5_read)
    f = h5py.File(tmp_path / "b.h5", "r")
    got = read_dataset(f["x"])  # HDF5 fills the short chunk's missing rows with garbage
    assert np.array_equal(got[:7], data[:7]) and np.array_equal(got[10:], data[10:])
    with pytest.raises(OSError):  # and reports a chunk that does not inflate
        read_dataset(f["y"])
    assert hdf5_reads == ["/x", "/y"]


def _unallocated_chunks(path: Path) -> None:
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("x", (20, 6), "<f4", chunks=(4, 6), compression="gzip", fillvalue=7)
        ds[:8] = 1.0


FALLBACKS = {
    "lzf": lambda p: written(p, grid((30, 8), "<f4"), chunks=(7, 3), compression="lzf"),
    "gzip+fletcher32": lambda p: written(
        p, grid((30, 8), "<f4"), chunks=(7, 3), compression="gzip", fletcher32=True
    ),
    "chunked, no filter": lambda p: written(p, grid((30, 8), "<f4"), chunks=(7, 3)),
    "vlen int32": lambda p: written(
        p,
        np.array([np.arange(n, dtype=np.int32) for n in (3, 1, 4)], dtype=object),
        dtype=h5py.vlen_dtype(np.int32),
    ),
    "vlen str": lambda p: written(p, ["ab", "cde"], dtype=h5py.string_dtype()),
    "fixed bytes": lambda p: written(p, np.full((40, 3), b"xy")),
    "gzip bytes": lambda p: written(p, np.full((40, 3), b"xy"), compression="gzip"),
    "compound": lambda p: written(p, np.zeros(50, [("a", "<f4"), ("b", "<i2")])),
    "complex": lambda p: written(p, grid((20, 4), "<f8") * (1 + 1j)),
    "enum": lambda p: written(
        p, np.arange(40, dtype="u1") % 2, dtype=h5py.enum_dtype({"A": 0, "B": 1}, "u1")
    ),
    "zero size": lambda p: written(p, np.zeros((0, 5), "<f4")),
    "zero size gzip": lambda p: written(
        p, np.zeros((0, 5), "<f4"), chunks=(4, 5), maxshape=(None, 5), compression="gzip"
    ),
    "scalar": lambda p: written(p, 3.5),
    "null dataspace": lambda p: written(p, h5py.Empty("<f4")),
    "never written": lambda p: written(p, None, shape=(30, 8), dtype="<f8"),
    "compact": lambda p: _compact(p),
    "unallocated chunks": lambda p: (_unallocated_chunks(p), h5py.File(p, "r")["x"])[1],
}


def _compact(path: Path) -> h5py.Dataset:
    with h5py.File(path, "w") as f:
        space = h5py.h5s.create_simple((30, 8))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dsid = h5py.h5d.create(f.id, b"x", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        h5py.Dataset(dsid)[...] = grid((30, 8), "<f4")
    return h5py.File(path, "r")["x"]


@pytest.mark.parametrize("make", FALLBACKS.values(), ids=FALLBACKS.keys())
def test_other_datasets_read_as_hdf5_reads_them(tmp_path, inflates, make) -> None:
    ds = make(tmp_path / "f.h5")
    got = read_dataset(ds)
    if isinstance(got, np.ndarray):
        assert_same(got, ds)
        assert not is_mapped(got)
    else:  # scalar, h5py.Empty
        assert type(got) is type(ds[()]) and got == ds[()]
    assert not inflates


def test_files_not_opened_read_only_with_sec2_read_as_hdf5_reads_them(tmp_path, inflates) -> None:
    data = grid((30, 8), "<f4")
    written(tmp_path / "w.h5", data).file.close()
    memory = io.BytesIO((tmp_path / "w.h5").read_bytes())
    for where, options in ((tmp_path / "w.h5", {"mode": "r+"}),
                           (tmp_path / "w.h5", {"mode": "r", "driver": "core"}),
                           (memory, {"mode": "r"})):  # fmt: skip
        with h5py.File(where, **options) as f:
            got = read_dataset(f["x"])
            assert np.array_equal(got, data) and got.flags.writeable and not is_mapped(got)


def test_small_datasets_are_left_to_hdf5(tmp_path) -> None:
    small = written(tmp_path / "s.h5", grid((10, 10), "<f8"))
    assert not is_mapped(read_dataset(small))
    big = written(tmp_path / "b.h5", np.zeros(h5read._MIN_NBYTES // 8, "<f8"))
    assert is_mapped(read_dataset(big))


def test_reading_while_h5py_holds_its_lock_does_not_deadlock(tmp_path, inflates) -> None:
    with h5py.File(tmp_path / "l.h5", "w") as f:
        for name in "ab":
            f.create_dataset(name, data=grid((40, 30), "<f4"), chunks=(7, 4), compression="gzip")
    reads: list[np.ndarray] = []

    def read_items() -> None:
        with h5py.File(tmp_path / "l.h5", "r") as f:
            reads.extend(read_dataset(ds) for _, ds in f.items())  # items() holds the lock

    thread = threading.Thread(target=read_items, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive() and len(reads) == 2
    assert np.array_equal(reads[1], grid((40, 30), "<f4"))


@pytest.mark.parametrize("compression", [None, "gzip"])
@pytest.mark.parametrize("key", ["mc_maze_small_20", "mc_rtt_20", "area2_bump_20", "dmfc_rsg_20"])
def test_scores_from_files_read_fast_equal_scores_in_memory(
    tmp_path, inflates, key, compression
) -> None:
    target, submission = make_case(key, n_train=12, n_eval=8, seed=0)
    tpath = tmp_path / "t.h5"
    with h5py.File(tpath, "w") as f:  # as nlb_tools' save_to_h5 writes targets
        for name, value in target.items():
            dtype = h5py.vlen_dtype(np.int64) if name.endswith("_cond_idx") else None
            f.create_dataset(f"{key}/{name}", data=value, dtype=dtype, compression=compression)
    spath = write_submission(tmp_path / "s.h5", {key: submission}, compression=compression)
    from_files = score_by_key(tpath, spath)[key]
    in_memory = score_by_key({key: target}, {key: submission})[key]
    assert from_files.metrics == in_memory.metrics
    assert (len(inflates) > 0) == (compression == "gzip")
