"""``nlbsuite prepare`` / ``nlbsuite fetch`` and the nlb_tools-layout export."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from nlbsuite.data import phase_data_from_h5
from nlbsuite.errors import UserError
from nlbsuite.nlb import export, load_nlb
from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the ``nlbsuite`` entry point (UserError -> one line, exit 2)."""
    from nlbsuite.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def maze(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_synthetic(
        tmp_path_factory.mktemp("maze"),
        SyntheticSpec(layout="mc_maze", n_trials=24, n_neurons=10, seed=9),
    )


def test_export_layout_and_round_trip(maze: list[Path], tmp_path: Path) -> None:
    data = load_nlb("mc_maze_small", "val", 20, nwb_paths=maze, use_cache=False)
    files = export(data, tmp_path)
    assert [p.name for p in files] == ["train_input.h5", "eval_input.h5", "eval_target.h5"]
    with h5py.File(tmp_path / "eval_target.h5", "r") as f:
        assert list(f) == ["mc_maze_small_20"]  # nested under the dataset key
        group = f["mc_maze_small_20"]
        assert group["eval_spikes_heldout"].dtype == np.float32
        assert group["psth"].dtype == np.float32
        assert h5py.check_vlen_dtype(group["eval_cond_idx"].dtype) == np.dtype("int32")
    with h5py.File(tmp_path / "train_input.h5", "r") as f:
        assert sorted(f) == sorted(
            [
                "train_spikes_heldin",
                "train_spikes_heldout",
                "train_behavior",
                "train_spikes_heldin_forward",
                "train_spikes_heldout_forward",
            ]
        )
    with h5py.File(tmp_path / "eval_input.h5", "r") as f:
        assert sorted(f) == ["eval_spikes_heldin", "eval_spikes_heldout"]
    # the suite's own h5 reader takes the merged inputs plus the target
    merged = tmp_path / "mc_maze_small_20_val.h5"
    with h5py.File(merged, "w") as out:
        for name in ("train_input.h5", "eval_input.h5"):
            with h5py.File(tmp_path / name, "r") as f:
                for key in f:
                    out[key] = f[key][()]
    back = phase_data_from_h5(
        merged, "mc_maze_small", 20, "val", target_path=tmp_path / "eval_target.h5"
    )
    np.testing.assert_array_equal(back.train_spikes_heldin, data.train_spikes_heldin)
    np.testing.assert_allclose(back.target.psth, data.target.psth, rtol=1e-6)
    assert not list(tmp_path.glob(".*tmp"))


def test_prepare_command_exports(
    maze: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = _cli(
        [
            "prepare",
            "mc_maze",
            "--phase",
            "test",
            "--bin",
            "5",
            "--nwb",
            *map(str, maze),
            "--export",
            str(out_dir),
            "--no-cache",
        ],
        capsys,
    )
    assert code == 0, err
    assert "mc_maze (test)" in out and "wrote" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["eval_input.h5", "train_input.h5"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prepare", "mc_mazz", "--nwb", "x.nwb"], "unknown NLB dataset"),
        (["prepare", "mc_maze", "--bin", "10", "--nwb", "x.nwb"], "expected 5 or 20"),
        (["prepare", "mc_maze", "--phase", "dev"], "--phase 'dev'"),
        (["prepare", "mc_maze", "--nwb", "/nonexistent/file.nwb"], "/nonexistent/file.nwb"),
    ],
)
def test_prepare_bad_input_is_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(argv, capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_fetch_offline_fails_fast(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a closed local port stands in for "no network" (and keeps CI from downloading)
    monkeypatch.setenv("NLBSUITE_DANDI_API", "http://127.0.0.1:9/api")
    start = time.perf_counter()
    code, _, err = _cli(["fetch", "mc_maze_small", "--data-dir", str(tmp_path)], capsys)
    assert time.perf_counter() - start < 2.0
    assert code == 2 and "cannot reach the DANDI archive" in err and err.count("\n") == 1


def test_fetch_hanging_connection_times_out_under_two_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection (or DNS lookup) that hangs is abandoned at the deadline."""
    import socket

    from nlbsuite.nlb import fetch

    released = threading.Event()

    def hang(*args: object, **kwargs: object) -> None:
        released.wait(30)
        raise OSError("released by the test")  # as a real connect that finally fails

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    try:
        with pytest.raises(UserError, match="timed out"):
            fetch.check_reachable("https://api.dandiarchive.org/api")
        assert time.perf_counter() - start < 2.0
    finally:
        released.set()  # the abandoned worker ends now, not during a later test


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((300, 50, 40), np.float32), ((7, 3), np.int32), ((5000,), np.int32), ((), np.float32), ((0, 4), np.float32)],
)  # fmt: skip
def test_exported_arrays_are_gzip_chunks_any_reader_inflates(
    shape: tuple[int, ...], dtype: type, tmp_path: Path
) -> None:
    """The threaded gzip writer: chunks of whole trials (zero-padded at the edge) that h5py
    and the scorer's own reader inflate to the array written."""
    from nlbsuite.h5read import read_dataset
    from nlbsuite.nlb.prepare import write_gzip

    arr = np.random.default_rng(0).poisson(0.3, size=shape).astype(dtype)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        write_gzip(f, "x", arr)
    with h5py.File(tmp_path / "x.h5", "r") as f:
        ds = f["x"]
        assert ds.dtype == dtype and ds.shape == shape
        np.testing.assert_array_equal(ds[()], arr)
        np.testing.assert_array_equal(read_dataset(ds), arr)
        if arr.ndim and arr.size:
            assert ds.compression == "gzip"
            assert ds.chunks[1:] == shape[1:]
    if shape == (300, 50, 40):  # 8000 bytes a trial: 131 trials a chunk, the last one partial
        with h5py.File(tmp_path / "x.h5", "r") as f:
            assert f["x"].chunks[0] == 131
