"""nlbsuite's NLB tensors == unmodified nlb_tools 0.0.4, on synthetic sessions of all four
layouts, 5 and 20 ms, val and test phases (run with the oracle python: ``-m oracle``)."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("nlb_tools")

from nlbsuite.nlb.nwb import read_recording
from nlbsuite.nlb.prepare import build_tensors, export, load_nlb
from nlbsuite.nlb.specs import get_spec
from nlbsuite.nlb.synthetic import LAYOUTS, SyntheticSpec, write_synthetic

sys.path.insert(0, str(Path(__file__).parent))
from nlb_oracle import h5_datasets, nlb_tools_tensors

pytestmark = pytest.mark.oracle
logging.getLogger("nlb_tools").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny synthetic session (train + test NWB) per layout."""
    root = tmp_path_factory.mktemp("nlb_sessions")
    out = {}
    for layout in LAYOUTS:
        paths = write_synthetic(
            root / layout, SyntheticSpec(layout=layout, n_trials=40, n_neurons=16, seed=3)
        )
        out[layout] = paths[0].parent
    return out


def assert_same(ours, ref, where: str = "") -> None:
    """Spikes and ints exactly, floats within 1e-6 relative (1e-12 absolute for FFT noise
    around zero), NaN positions identical, ragged index lists element by element."""
    if isinstance(ref, dict):
        assert set(ours) == set(ref), f"{where}: keys {sorted(ours)} != {sorted(ref)}"
        for key in ref:
            assert_same(ours[key], ref[key], f"{where}/{key}")
        return
    if isinstance(ref, list) or (isinstance(ref, np.ndarray) and ref.dtype == object):
        assert len(ours) == len(ref), f"{where}: {len(ours)} != {len(ref)} entries"
        for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"{where}[{i}]")
        return
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{where}: shape {ours.shape} != {ref.shape}"
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, ref, err_msg=where)
        return
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{where}: NaN positions")
    if "spikes" in where:
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12, equal_nan=True, err_msg=where)


@pytest.mark.parametrize("phase", ["val", "test"])
@pytest.mark.parametrize("bin_ms", [5, 20])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_tensors_equal_nlb_tools(
    sessions: dict[str, Path], layout: str, bin_ms: int, phase: str
) -> None:
    folder = sessions[layout]
    spec = get_spec(layout)
    ref = nlb_tools_tensors(folder, layout, bin_ms, phase)
    fields = (spec.behavior_field,) if spec.behavior_source == "data" else ()
    ours = build_tensors(read_recording(sorted(folder.glob("*.nwb")), fields), spec, bin_ms, phase)
    for name, a, b in zip(("train_input", "eval_input", "eval_target"), ours, ref, strict=True):
        if b is None:
            assert a is None
        else:
            assert_same(a, b, name)
    # the comparison is not vacuous: real spikes, and the val target has PSTHs where defined
    assert np.nansum(ours[0]["train_spikes_heldin"]) > 0
    if phase == "val" and spec.psth is not None:
        body = next(iter(ours[2].values()))
        assert body["psth"].shape[0] >= 2 and np.isfinite(body["psth"]).any()


@pytest.mark.parametrize(
    ("layout", "bin_ms"), [("mc_maze", 20), ("dmfc_rsg", 5), ("area2_bump", 5)]
)
def test_export_matches_save_to_h5(
    sessions: dict[str, Path], tmp_path: Path, layout: str, bin_ms: int
) -> None:
    """Our export == the files nlb_tools' save_to_h5 writes: keys, nesting, dtypes, values."""
    from nlb_tools.make_tensors import (
        make_eval_input_tensors,
        make_eval_target_tensors,
        make_train_input_tensors,
    )
    from nlb_tools.nwb_interface import NWBDataset

    folder = sessions[layout]
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = NWBDataset(str(folder))
        ds.resample(bin_ms)
        make_train_input_tensors(
            ds,
            layout,
            "train",
            save_path=str(ref_dir / "train_input.h5"),
            include_behavior=True,
            include_forward_pred=True,
        )
        make_eval_input_tensors(ds, layout, "val", save_path=str(ref_dir / "eval_input.h5"))
        make_eval_target_tensors(
            ds, layout, "train", "val", save_path=str(ref_dir / "eval_target.h5"), include_psth=True
        )
    data = load_nlb(layout, "val", bin_ms, nwb_paths=sorted(folder.glob("*.nwb")), use_cache=False)
    export(data, tmp_path / "ours")

    for name in ("train_input.h5", "eval_input.h5", "eval_target.h5"):
        with h5py.File(ref_dir / name, "r") as fr, h5py.File(tmp_path / "ours" / name, "r") as fo:
            ref, ours = h5_datasets(fr), h5_datasets(fo)
            assert sorted(ours) == sorted(ref), name
            for key, dset in ref.items():
                assert ours[key].dtype == dset.dtype, (
                    f"{name}:{key} {ours[key].dtype} != {dset.dtype}"
                )
                assert_same(ours[key][()], dset[()], f"{name}:{key}")


def test_real_test_nwb_equals_nlb_tools(mc_maze_small_test_nwb: Path) -> None:
    """The genuine DANDI 000140 test file: eval inputs identical to nlb_tools at 5 and 20 ms."""
    from nlb_tools.make_tensors import make_eval_input_tensors
    from nlb_tools.nwb_interface import NWBDataset

    rec = read_recording([mc_maze_small_test_nwb], ("hand_vel",))
    for bin_ms in (5, 20):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = NWBDataset(str(mc_maze_small_test_nwb))
            ds.resample(bin_ms)
            ref = make_eval_input_tensors(ds, "mc_maze_small", "test", save_file=False)
        ours = build_tensors(rec, get_spec("mc_maze_small"), bin_ms, "test")[1]
        assert_same(ours, ref, f"real {bin_ms} ms")
        assert ours["eval_spikes_heldin"].shape == (100, 700 // bin_ms, 107)
