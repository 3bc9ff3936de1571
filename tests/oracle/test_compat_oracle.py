"""``nlbsuite.compat`` == unmodified nlb_tools 0.0.4: the same dicts (keys, shapes, values,
NaN positions), files nlb_tools reads, and ``evaluate`` on a stand-in of the released test
file built by nlb_tools itself (run with the oracle python: ``-m oracle``)."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("nlb_tools")
from nlb_tools import make_tensors as nlb_mt
from nlb_tools.evaluation import evaluate as nlb_evaluate
from nlb_tools.nwb_interface import NWBDataset as NlbDataset

from nlbsuite import compat
from nlbsuite.nlb.synthetic import LAYOUTS, SyntheticSpec, write_synthetic

sys.path.insert(0, str(Path(__file__).parent))
from nlb_oracle import h5_datasets
from test_tensors_oracle import assert_same

pytestmark = pytest.mark.oracle
SCALING = ("mc_maze_large", "mc_maze_medium", "mc_maze_small")
TOL = 1e-6


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    logging.disable(logging.NOTSET)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny synthetic session (train + test NWB files) per layout."""
    root = tmp_path_factory.mktemp("compat_sessions")
    out = {}
    for layout in LAYOUTS:
        spec = SyntheticSpec(layout=layout, n_trials=40, n_neurons=16, seed=5)
        out[layout] = write_synthetic(root / layout, spec)[0].parent
    return out


def _pair(folder: Path, bin_ms: int) -> tuple[NlbDataset, compat.NWBDataset]:
    ref, ours = NlbDataset(str(folder)), compat.NWBDataset(str(folder))
    ref.resample(bin_ms)
    ours.resample(bin_ms)
    return ref, ours


def _calls(name: str) -> list[tuple[str, tuple, dict]]:
    """The make_* calls of NLB's baseline and lfads-torch / NDT preparation scripts."""
    return [
        ("make_train_input_tensors", (name,), {"save_file": False}),
        ("make_train_input_tensors", (name, ["train", "val"]),
         {"save_file": False, "include_behavior": True, "include_forward_pred": True}),
        ("make_eval_input_tensors", (name, "val"), {"save_file": False}),
        ("make_eval_input_tensors", (name, "test"), {"save_file": False}),
        ("make_eval_target_tensors", (name, "train", "val"),
         {"save_file": False, "include_psth": True}),
        ("make_eval_target_tensors", (name,), {"save_file": False}),
    ]  # fmt: skip


@pytest.mark.parametrize("bin_ms", [5, 20])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_make_functions_equal_nlb_tools(
    sessions: dict[str, Path], layout: str, bin_ms: int
) -> None:
    ref_ds, our_ds = _pair(sessions[layout], bin_ms)
    pd.testing.assert_frame_equal(our_ds.trial_info, ref_ds.trial_info, check_dtype=False)
    assert our_ds.bin_width == ref_ds.bin_width == bin_ms
    for fn, args, kwargs in _calls(layout):
        ref = getattr(nlb_mt, fn)(ref_ds, *args, **kwargs)
        ours = getattr(compat, fn)(our_ds, *args, **kwargs)
        where = f"{fn}{args}"
        assert list(ours) == list(ref), where
        assert_same(ours, ref, where)
        first = next(iter(ours.values()))
        arr = first if isinstance(first, np.ndarray) else first["eval_spikes_heldout"]
        assert np.nansum(arr) > 0, where  # not vacuous: real spikes
    mask = (ref_ds.trial_info.split == "train").to_numpy() & (ref_ds.trial_info.index % 2 == 0)
    ref = nlb_mt.make_train_input_tensors(ref_ds, layout, mask, save_file=False)
    assert_same(compat.make_train_input_tensors(our_ds, layout, mask, save_file=False), ref)


@pytest.mark.parametrize(
    ("layout", "bin_ms"), [("mc_maze", 20), ("area2_bump", 5), ("dmfc_rsg", 5)]
)
def test_saved_files_equal_nlb_tools(
    sessions: dict[str, Path], tmp_path: Path, layout: str, bin_ms: int, monkeypatch
) -> None:
    """make_* with their default save_file=True: same files (keys, dtypes, values) as
    nlb_tools writes, and nlb_tools reads ours back."""
    ref_ds, our_ds = _pair(sessions[layout], bin_ms)
    for who, mod, ds in (("ref", nlb_mt, ref_ds), ("ours", compat, our_ds)):
        (tmp_path / who).mkdir()
        monkeypatch.chdir(tmp_path / who)  # default save paths are relative
        mod.make_train_input_tensors(ds, layout, include_behavior=True, include_forward_pred=True)
        mod.make_eval_input_tensors(ds, layout)
        mod.make_eval_target_tensors(ds, layout, include_psth=True)
    for name in ("train_input.h5", "eval_input.h5", "target_data.h5"):
        with h5py.File(tmp_path / "ref" / name) as fr, h5py.File(tmp_path / "ours" / name) as fo:
            ref, ours = h5_datasets(fr), h5_datasets(fo)
            assert sorted(ours) == sorted(ref), name
            for key, dset in ref.items():
                assert ours[key].dtype == dset.dtype, (name, key, ours[key].dtype, dset.dtype)
                assert ours[key].compression == dset.compression, (name, key)
                assert_same(ours[key][()], dset[()], f"{name}:{key}")
            assert_same(nlb_mt.h5_to_dict(fo), nlb_mt.h5_to_dict(fr), name)


def test_save_to_h5_merges_like_nlb_tools(tmp_path: Path) -> None:
    data = {"a": {"x": np.arange(6.0).reshape(2, 3), "idx": [np.arange(3), np.arange(2)]}}
    more = {"a": {"x": np.ones((2, 3)), "y": np.int64(7) * np.ones(2, np.int64)}, "b": np.ones(1)}
    for mod, who in ((nlb_mt, "ref"), (compat, "ours")):
        path = str(tmp_path / f"{who}.h5")
        idx = np.empty(2, dtype=object)  # nlb_tools takes ragged lists as object arrays
        idx[:] = data["a"]["idx"]
        mod.save_to_h5({"a": {"x": data["a"]["x"], "idx": idx}}, path)
        mod.save_to_h5(more, path)  # duplicate 'a/x' without overwrite: nothing written
        mod.save_to_h5({"c": np.zeros(2)}, path, overwrite=True)
        mod.save_to_h5(more, path, overwrite=True)
    with h5py.File(tmp_path / "ref.h5") as fr, h5py.File(tmp_path / "ours.h5") as fo:
        assert (
            sorted(h5_datasets(fo)) == sorted(h5_datasets(fr)) == ["a/idx", "a/x", "a/y", "b", "c"]
        )
        for key, dset in h5_datasets(fr).items():
            assert fo[key].dtype == dset.dtype, key
        assert_same(nlb_mt.h5_to_dict(fo), nlb_mt.h5_to_dict(fr))


# ----------------------------------------------------------------------------------------
# evaluate on a stand-in of the released test file, built by nlb_tools
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stand_in(sessions: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """eval_data_test.h5's layout written by nlb_tools' save_to_h5: make_eval_target_tensors
    of the MC_Maze (with the scaling keys), MC_RTT and Area2_Bump sessions, at 5 and 20 ms.
    DMFC_RSG's groups are nlbsuite's synthetic test-phase targets (80 eval trials): tp corr
    needs >= 2 eval trials in each of its conditions, more than a tiny session has."""
    from nlbsuite.synthetic_targets import make_case

    path = tmp_path_factory.mktemp("stand_in") / "eval_data_test.h5"
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for layout in ("mc_maze", "mc_rtt", "area2_bump"):
            names = (layout, *SCALING) if layout == "mc_maze" else (layout,)
            for bin_ms in (5, 20):
                ds = NlbDataset(str(sessions[layout]))
                ds.resample(bin_ms)
                for name in names:
                    target = nlb_mt.make_eval_target_tensors(
                        ds, name, "train", "val", save_file=False, include_psth=True
                    )
                    nlb_mt.save_to_h5(target, str(path))
        for key in ("dmfc_rsg", "dmfc_rsg_20"):
            target = make_case(key, n_train=30, n_eval=80, seed=4, phase="test")[0]
            for name, value in target.items():
                if isinstance(value, list):  # ragged index lists: object arrays for nlb_tools
                    target[name] = np.empty(len(value), dtype=object)
                    target[name][:] = value
            nlb_mt.save_to_h5({key: target}, str(path))
    logging.disable(logging.NOTSET)
    return path


def _submission(target: Path, out: Path, seed: int) -> Path:
    """Random positive rates of the shapes each target group implies."""
    rng = np.random.default_rng(seed)
    with h5py.File(target) as f:
        groups = {}
        for key, g in f.items():
            n_eval, n_bins, n_out = g["eval_spikes_heldout"].shape
            n_fwd, n_in = g["eval_spikes_heldin_forward"].shape[1:]
            n_train = g["train_behavior"].shape[0]
            shapes = {
                "train_rates_heldin": (n_train, n_bins, n_in),
                "train_rates_heldout": (n_train, n_bins, n_out),
                "eval_rates_heldin": (n_eval, n_bins, n_in),
                "eval_rates_heldout": (n_eval, n_bins, n_out),
                "eval_rates_heldin_forward": (n_eval, n_fwd, n_in),
                "eval_rates_heldout_forward": (n_eval, n_fwd, n_out),
            }
            groups[key] = {k: rng.gamma(2.0, 0.1, s) for k, s in shapes.items()}
    nlb_mt.save_to_h5(groups, str(out))
    return out


def test_evaluate_equals_nlb_tools_on_the_stand_in(
    stand_in: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from threadpoolctl import threadpool_limits

    from nlbsuite.cli import main

    with h5py.File(stand_in) as f:
        keys = sorted(f)
    assert len(keys) == 14  # 7 datasets x 2 bin widths
    sub = _submission(stand_in, tmp_path / "sub.h5", seed=1)
    with threadpool_limits(1):
        expected = nlb_evaluate(str(stand_in), str(sub))
        got = compat.evaluate(str(stand_in), str(sub))
        assert main(["score", str(sub), "--target", str(stand_in), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [list(d) for d in got] == [list(d) for d in expected]
    splits = [s for d in expected for s in d]
    assert "mc_maze_scaling_split" in splits and "mc_maze_scaling_20_split" in splits
    worst: dict[str, float] = {}
    for exp, res in zip(expected, got, strict=True):
        for split, metrics in exp.items():
            assert list(res[split]) == list(metrics), split
            for name, value in metrics.items():
                assert np.isfinite(value), (split, name)
                diff = abs(res[split][name] - value)
                key = _cli_key(split, name)
                diff_cli = abs(cli[key[0]][key[1]] - value)
                metric = name.split("] ")[-1]
                worst[metric] = max(worst.get(metric, 0.0), float(diff), float(diff_cli))
                assert diff <= TOL and diff_cli <= TOL, (split, name, value, res[split][name])
    print("max |diff| per metric:", worst)


def _cli_key(split: str, name: str) -> tuple[str, str]:
    """nlb_tools' (split, metric) -> (dataset key, metric) of ``nlbsuite score --json``."""
    suffix = "_20" if split.endswith("_20_split") else ""
    if split.startswith("mc_maze_scaling"):
        prefix, metric = name.split(" ", 1)
        size = {"[500]": "large", "[250]": "medium", "[100]": "small"}[prefix]
        return f"mc_maze_{size}{suffix}", metric
    return split.removesuffix("_split"), name
