"""nlbsuite.compat without nlb_tools: real test NWBs, unsupported calls, file writes.
(Equality with nlb_tools itself: tests/oracle/test_compat_oracle.py.)"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from nlbsuite import compat
from nlbsuite.errors import UserError
from nlbsuite.nlb.nwb import read_recording
from nlbsuite.nlb.prepare import build_tensors
from nlbsuite.nlb.specs import get_spec
from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic
from tests.conftest import SHARED

REAL = {
    "mc_maze_small": (SHARED / "data/mc_maze_small/sub-Jenkins_ses-small_desc-test_ecephys.nwb", 107),
    "mc_maze_medium": (SHARED / "data/mc_maze_medium/sub-Jenkins_ses-medium_desc-test_ecephys.nwb", 114),
}  # fmt: skip


@pytest.mark.parametrize("dataset", list(REAL))
def test_real_test_nwb_builds_the_test_phase_inputs(dataset: str) -> None:
    path, n_heldin = REAL[dataset]
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    ds = compat.NWBDataset(str(path))
    assert len(ds.trial_info) == 100 and set(ds.trial_info.split) == {"test"}
    assert str(ds.trial_info.move_onset_time.dtype) == "timedelta64[ns]"
    rec = read_recording([path], ("hand_vel",))
    for bin_ms in (5, 20):
        ds = compat.NWBDataset(str(path))
        ds.resample(bin_ms)
        got = compat.make_eval_input_tensors(ds, dataset, "test", save_file=False)
        assert list(got) == ["eval_spikes_heldin"]  # test trials: no held-out spikes
        heldin = got["eval_spikes_heldin"]
        assert heldin.shape == (100, 700 // bin_ms, n_heldin)
        assert heldin.dtype == np.float32 and np.isfinite(heldin).all() and heldin.sum() > 1000
        ref = build_tensors(rec, get_spec(dataset), bin_ms, "test")[1]["eval_spikes_heldin"]
        np.testing.assert_array_equal(heldin, ref)


@pytest.fixture(scope="module")
def maze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compat_maze")
    spec = SyntheticSpec(layout="mc_maze", n_trials=30, n_neurons=12, seed=2)
    return write_synthetic(root, spec)[0].parent


def _one_line(call, match: str) -> None:
    with pytest.raises(UserError, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_unsupported_calls_name_the_alternative(maze: Path) -> None:
    _one_line(lambda: compat.NWBDataset(maze, split_heldout=False), "split_heldout=False")
    _one_line(lambda: compat.NWBDataset(maze, skip_fields=["eye_pos"]), "skip_fields")
    _one_line(lambda: compat.NWBDataset(maze / "nope"), "not found")
    ds = compat.NWBDataset(maze)
    _one_line(lambda: ds.data, r"NWBDataset.data is not supported .*make_\*_tensors")
    _one_line(lambda: ds.smooth_spk(40), "gaussian_filter1d")
    assert not hasattr(ds, "no_such_attribute")  # other names: a plain AttributeError
    _one_line(lambda: compat.make_eval_input_tensors(ds, "mc_maze"), r"resample\(5\)")
    _one_line(lambda: ds.resample(7), r"target_bin=7: expected 5 or 20")
    ds.resample(5)
    _one_line(lambda: ds.resample(20), "resample once")
    kw = {"save_file": False}
    _one_line(lambda: compat.make_eval_input_tensors(ds, "mc_maze", update_params={"lag": 1}, **kw),
              "update_params")  # fmt: skip
    _one_line(lambda: compat.make_eval_input_tensors(ds, "mc_maze", "tset", **kw), "'tset'")
    _one_line(lambda: compat.make_eval_input_tensors(ds, "mc_maze", np.ones(3, bool), **kw),
              "boolean mask of 30 trials")  # fmt: skip
    _one_line(lambda: compat.make_eval_input_tensors(ds, "mc_mazy", **kw), "mc_mazy")
    _one_line(lambda: compat.make_eval_input_tensors(object(), "mc_maze", **kw), "NWBDataset")


def test_defaults_write_files_and_return_flags(
    maze: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ds = compat.NWBDataset(maze)
    ds.resample(20)
    got = compat.make_train_input_tensors(ds, "mc_maze")  # save_file=True by default
    assert list(got) == ["train_spikes_heldin", "train_spikes_heldout"]
    with h5py.File(tmp_path / "train_input.h5") as f:
        assert sorted(f) == sorted(got) and f["train_spikes_heldin"].dtype == np.float32
        np.testing.assert_array_equal(f["train_spikes_heldin"][()], got["train_spikes_heldin"])
    assert compat.make_eval_input_tensors(ds, "mc_maze", return_dict=False, save_path="e") is None
    assert (tmp_path / "e.h5").is_file()


def test_save_to_h5_failure_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    compat.save_to_h5({"a": np.arange(3)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        compat.save_to_h5({"b": np.ones(2), "c": np.array([{}, {}])}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]  # no temporary left
    with h5py.File(path) as f:
        assert list(f) == ["a"] and f["a"].dtype == np.int32
