"""NWB reading: the synthetic files' content round-trips; bad files give one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from nlbsuite.catalog import check_bin_width
from nlbsuite.errors import UserError
from nlbsuite.nlb import load_nlb
from nlbsuite.nlb.nwb import NAT, read_recording, seconds_to_ns
from nlbsuite.nlb.specs import get_spec
from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic


@pytest.fixture(scope="module")
def maze(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("maze")
    return write_synthetic(root, SyntheticSpec(layout="mc_maze", n_trials=24, n_neurons=10, seed=5))


def _copy(src: Path, tmp_path: Path, name: str = "copy.nwb") -> Path:
    dst = tmp_path / name
    shutil.copy(src, dst)
    return dst


def test_seconds_to_ns_matches_pandas() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.uniform(0, 3000, 20000), np.round(rng.uniform(0, 3000, 20000), 3)])
    vals[5] = np.nan
    ours = seconds_to_ns(vals)
    ref = pd.to_timedelta(vals, unit="s").values.astype("int64")
    ok = ~np.isnan(vals)
    np.testing.assert_array_equal(ours[ok], ref[ok])
    assert ours[5] == NAT


def test_train_and_test_files_are_joined(maze: list[Path]) -> None:
    rec = read_recording(maze, ("hand_vel",))
    # nlb_tools loads a folder in sorted order: the test file comes first
    assert [p.name for p in rec.paths] == sorted(p.name for p in maze)
    split = rec.trials.split
    assert set(split) <= {"train", "val", "test", "none"}
    first_train = np.flatnonzero(split != "test")[0]
    assert np.all(split[:first_train] == "test")
    # trial ids continue across files, and the second file starts on a 100 ms boundary
    np.testing.assert_array_equal(rec.trials["trial_id"], np.arange(len(split)))
    start_ms = rec.trials["start_time"][first_train] // 1_000_000
    assert rec.heldin.valid_ms[:start_ms].sum() < start_ms  # a gap of missing data
    assert rec.heldout is not None and not rec.heldout.valid_ms[: rec.n_ms // 4].all()
    assert rec.signals["hand_vel"].shape == (rec.n_ms, 2)
    assert rec.heldin.n_units + rec.heldout.n_units == 10


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("units", "no units table"),
        ("trials", "no trials table"),
        ("heldout", "no 'heldout' column"),
        ("split", "unknown value(s) 'banana'"),
        ("spikes", "has no 'spike_times' column"),
    ],
)
def test_damaged_nwb_names_file_and_problem(
    maze: list[Path], tmp_path: Path, damage: str, message: str
) -> None:
    path = _copy(maze[1], tmp_path)
    with h5py.File(path, "r+") as f:
        if damage == "units":
            del f["units"]
        elif damage == "trials":
            del f["intervals/trials"]
        elif damage == "heldout":
            del f["units/heldout"]
        elif damage == "spikes":
            del f["units/spike_times"]
        elif damage == "split":
            split = f["intervals/trials/split"][()]
            split[0] = b"banana"
            del f["intervals/trials/split"]
            f["intervals/trials"].create_dataset("split", data=split, dtype=h5py.string_dtype())
    with pytest.raises(UserError) as err:
        read_recording([path])
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


@pytest.mark.parametrize("kind", ["text", "truncated", "empty", "missing", "directory"])
def test_unreadable_files(maze: list[Path], tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.nwb"
    if kind == "text":
        path.write_text("this is not HDF5\n")
    elif kind == "truncated":
        data = maze[1].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(UserError) as err:
        read_recording([path])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_arguments_are_user_errors(maze: list[Path]) -> None:
    with pytest.raises(UserError, match="unknown NLB dataset"):
        get_spec("mc_mazee")
    with pytest.raises(UserError, match="expected 5 or 20"):
        check_bin_width(10)
    with pytest.raises(UserError, match="expected 5 or 20"):
        load_nlb("mc_maze", "val", 10, nwb_paths=maze, use_cache=False)
    with pytest.raises(UserError, match="phase='train'"):
        load_nlb("mc_maze", "train", 5, nwb_paths=maze, use_cache=False)
    with pytest.raises(UserError, match="no 'val' trials"):  # the test file alone
        load_nlb("mc_maze", "val", 5, nwb_paths=[maze[1]], use_cache=False)


def test_missing_data_dir_points_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nlbsuite fetch mc_rtt"):
        load_nlb("mc_rtt", data_dir=tmp_path, use_cache=False)


def test_data_dir_layout_is_found(
    maze: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files under $NLBSUITE_DATA/<dandiset>/ are found without --nwb."""
    folder = tmp_path / "data" / get_spec("mc_maze_small").dandiset / "sub-Jenkins"
    folder.mkdir(parents=True)
    for p in maze:
        shutil.copy(p, folder / p.name)
    monkeypatch.setenv("NLBSUITE_DATA", str(tmp_path / "data"))
    data = load_nlb("mc_maze_small", "test", 20, use_cache=False)
    assert data.eval_spikes_heldin.shape[1:] == (35, data.n_heldin)
