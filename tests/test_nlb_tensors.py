"""Tensor building on synthetic sessions: shapes, invariants, ground truth, jitter, and the
fast PSTH against a direct (whole-recording) implementation of nlb_tools' algorithm."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from nwb_counts import counts_from_nwb

from nlbsuite.nlb import load_nlb
from nlbsuite.nlb.nwb import Recording, SpikeGroup, read_recording
from nlbsuite.nlb.psth import binned_smoothing_matrix, gaussian_kernel, make_psth
from nlbsuite.nlb.specs import get_spec
from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic
from nlbsuite.nlb.tensors import trial_windows


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("sessions")
    return {
        layout: write_synthetic(
            root / layout, SyntheticSpec(layout=layout, n_trials=30, n_neurons=12, seed=11)
        )
        for layout in ("mc_maze", "dmfc_rsg", "area2_bump")
    }


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_val_phase_shapes_and_invariants(sessions: dict[str, list[Path]], bin_ms: int) -> None:
    data = load_nlb("mc_maze", "val", bin_ms, nwb_paths=sessions["mc_maze"], use_cache=False)
    n_bins, n_fwd = 700 // bin_ms, 200 // bin_ms
    assert data.n_bins == n_bins and data.n_forward == n_fwd
    assert data.train_spikes_heldin.dtype == np.float32
    for arr in (data.train_spikes_heldin, data.train_spikes_heldout, data.eval_spikes_heldin):
        assert np.all(arr >= 0) and np.all(arr == np.round(arr))
    t = data.target
    assert t is not None and t.psth is not None
    assert t.psth.shape[1:] == (n_bins, data.n_heldin + data.n_heldout)
    # every eval trial belongs to at most one condition, indices within range
    idx = np.concatenate(t.eval_cond_idx)
    assert len(idx) == len(set(idx.tolist())) and idx.max() < data.eval_spikes_heldin.shape[0]
    np.testing.assert_array_equal(t.eval_spikes_heldout, data.eval_spikes_heldout)
    assert t.train_behavior.shape == (data.train_spikes_heldin.shape[0], n_bins, 2)
    # held-in + held-out spikes, input and forward windows = each unit's spikes in those windows
    train_file = sessions["mc_maze"][0]
    np.testing.assert_array_equal(
        data.train_spikes_full(), counts_from_nwb(train_file, "train", (-250, 650), bin_ms)
    )
    val = counts_from_nwb(train_file, "val", (-250, 450), bin_ms)
    assert val[..., : data.n_heldin].sum() > 0 and val[..., data.n_heldin :].sum() > 0
    np.testing.assert_array_equal(data.eval_spikes_heldin, val[..., : data.n_heldin])
    np.testing.assert_array_equal(t.eval_spikes_heldout, val[..., data.n_heldin :])


def test_ground_truth_matches_spike_counts(sessions: dict[str, list[Path]]) -> None:
    data = load_nlb("area2_bump", "val", 20, nwb_paths=sessions["area2_bump"], use_cache=False)
    truth = data.truth
    assert truth is not None
    assert truth.eval_rates_heldout.shape == data.eval_spikes_heldout.shape
    # Poisson counts scatter around the true expected counts
    obs, exp = data.train_spikes_heldin.sum(), truth.train_rates_heldin.sum()
    assert abs(obs - exp) < 5 * np.sqrt(exp)
    corr = np.corrcoef(data.eval_spikes_heldout.ravel(), truth.eval_rates_heldout.ravel())[0, 1]
    assert corr > 0.3


def test_dmfc_jitter_is_seeded(sessions: dict[str, list[Path]]) -> None:
    a = load_nlb("dmfc_rsg", "val", 20, nwb_paths=sessions["dmfc_rsg"], seed=0, use_cache=False)
    b = load_nlb("dmfc_rsg", "val", 20, nwb_paths=sessions["dmfc_rsg"], seed=0, use_cache=False)
    c = load_nlb("dmfc_rsg", "val", 20, nwb_paths=sessions["dmfc_rsg"], seed=1, use_cache=False)
    np.testing.assert_array_equal(a.train_spikes_heldin, b.train_spikes_heldin)
    np.testing.assert_array_equal(a.target.eval_jitter, b.target.eval_jitter)
    assert not np.array_equal(a.target.train_jitter, c.target.train_jitter)
    # jitter in whole bins within [0, 300 ms]; eval target padded at the front to 1500 ms
    assert a.target.train_jitter.min() >= 0 and a.target.train_jitter.max() <= 300 // 20
    assert a.target.eval_spikes_heldout.shape[1] == 1500 // 20
    assert np.isnan(a.target.eval_spikes_heldout[:, 0]).any()  # set->go shorter than 1.5 s
    assert a.train_behavior.shape == (a.train_spikes_heldin.shape[0], 5)  # is_eye, theta, ...


# ----------------------------------------------------------------------------------------
# PSTH: fast path == direct implementation, also with missing data inside windows
# ----------------------------------------------------------------------------------------


def _direct_group(group: SpikeGroup, n_ms: int, kern_sd: int, bin_ms: int) -> np.ndarray:
    """nlb_tools' path: 1 ms array with NaNs, smooth each NaN-free run, resample."""
    x = np.zeros((n_ms, group.n_units))
    np.add.at(x, (group.spike_ms, group.spike_unit()), 1.0)
    x[~group.valid_ms] = np.nan
    w = gaussian_kernel(kern_sd)
    c = (len(w) - 1) // 2
    sm = np.full_like(x, np.nan)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], group.valid_ms.astype(int), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        for u in range(group.n_units):
            sm[a:b, u] = np.convolve(x[a:b, u], w, "full")[c : c + (b - a)]
    n_bins = -(-n_ms // bin_ms)
    padded = np.zeros((n_bins * bin_ms, group.n_units))
    padded[:n_ms] = np.nan_to_num(sm)
    out = padded.reshape(n_bins, bin_ms, -1).sum(axis=1)
    out[np.isnan(sm[::bin_ms, 0])] = np.nan
    return out


def _direct_psth(
    rec: Recording, dataset: str, bin_ms: int, train: np.ndarray, evals: np.ndarray
) -> np.ndarray:
    spec = get_spec(dataset).psth
    binned = np.concatenate(
        [_direct_group(g, rec.n_ms, spec.kern_sd_ms, bin_ms) for g in (rec.heldin, rec.heldout)],
        axis=1,
    )
    ignore = ~(train | evals)
    fields = np.stack([rec.trials.values(f) for f in spec.cond_fields], axis=1)
    skip = (
        rec.trials.values("is_outlier") == 1 if spec.skip_outliers else np.zeros(len(ignore), bool)
    )
    combos = sorted({tuple(r) for r in fields[~ignore & ~np.isnan(fields).any(axis=1)].tolist()})
    n_bins = -(-rec.n_ms // bin_ms)
    psths = []
    for combo in combos:
        sel = np.all(fields == np.array(combo), axis=1) & ~ignore & ~skip
        if not sel.any():
            continue
        win = trial_windows(rec, sel, spec.window, bin_ms, n_bins)
        keep = win.length >= 0.8 * win.length.mean()
        rows = {}
        for f, n, a in zip(win.first[keep], win.length[keep], win.align_bin[keep], strict=True):
            for k in range(n):
                rows.setdefault(f + k - a, []).append(binned[f + k])
        qs = sorted(rows)
        mean = np.array([np.nanmean(np.array(rows[q]), axis=0) for q in qs])
        min_len = int(win.length[keep].min())
        psths.append(mean[:min_len] if spec.pad == "back" else mean[-min_len:])
    max_len = (
        max(p.shape[0] for p in psths) if spec.seg_len_ms is None else spec.seg_len_ms // bin_ms
    )
    out = []
    for p in psths:
        fill = np.full((max_len - p.shape[0], p.shape[1]), np.nan)
        out.append(np.concatenate([p, fill] if spec.pad == "back" else [fill, p]))
    return np.stack(out)


def _punch_holes(rec: Recording, rng: np.random.Generator, n: int) -> Recording:
    """Mark short stretches inside trial windows as missing, as obs_intervals would."""
    group = rec.heldin
    valid = group.valid_ms.copy()
    starts = rec.trials["start_time"] // 1_000_000
    for s in rng.choice(starts[starts > 0], n, replace=False):
        a = int(s + rng.integers(150, 600))
        valid[a : a + int(rng.integers(3, 60))] = False
    keep = valid[group.spike_ms]
    holed = SpikeGroup.from_spikes(
        group.unit_ids, group.spike_ms[keep], group.spike_unit()[keep], valid
    )
    return dataclasses.replace(rec, heldin=holed)


@pytest.mark.parametrize(
    ("dataset", "bin_ms", "holes"),
    [
        ("mc_maze", 20, 0),
        ("mc_maze", 5, 6),
        ("dmfc_rsg", 20, 0),
        ("dmfc_rsg", 5, 5),
        ("area2_bump", 20, 4),
    ],
)
def test_fast_psth_equals_direct(
    sessions: dict[str, list[Path]], dataset: str, bin_ms: int, holes: int
) -> None:
    rec = read_recording(sessions[dataset])
    if holes:
        rec = _punch_holes(rec, np.random.default_rng(bin_ms), holes)
    train = rec.trials.split == "train"
    evals = rec.trials.split == "val"
    _, _, fast = make_psth(rec, get_spec(dataset).psth, bin_ms, train, evals, ~(train | evals))
    ref = _direct_psth(rec, dataset, bin_ms, train, evals)
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_binned_smoothing_matrix_is_kernel_then_bin_sum() -> None:
    w = gaussian_kernel(10)
    f, n_bins = 5, 4
    mat = binned_smoothing_matrix(w, f, n_bins)
    x = np.random.default_rng(0).poisson(0.3, mat.shape[1]).astype(float)
    lead = len(w) - 1 - (len(w) - 1) // 2
    smooth = np.convolve(x, w, "full")[(len(w) - 1) // 2 :]  # 'same' centring, from column 0
    direct = smooth[lead : lead + n_bins * f].reshape(n_bins, f).sum(axis=1)
    np.testing.assert_allclose(mat @ x, direct, rtol=1e-12)


def test_spike_binning_widens_dtype_for_large_counts() -> None:
    from nlbsuite.nlb.tensors import bin_spikes

    ms = np.concatenate([np.full(300, 7), [12, 13, 40]])  # 300 spikes in one 1 ms sample
    group = SpikeGroup(np.array([1, 2]), ms, np.array([0, 300, 303]), np.ones(50, bool))
    counts = bin_spikes(group, 5, 10)
    assert counts.dtype == np.uint16
    np.testing.assert_array_equal(counts[0], [0, 300, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(counts[1], [0, 0, 2, 0, 0, 0, 0, 0, 1, 0])


@pytest.mark.parametrize("factor", [5, 20])
def test_behaviour_at_selected_bins_equals_scipy_decimate(factor: int) -> None:
    from scipy import signal

    from nlbsuite.nlb.tensors import resample_signal

    rng = np.random.default_rng(factor)
    x = np.cumsum(rng.normal(size=(4000, 2)), axis=0)
    x[:30] = np.nan  # leading and inner gaps are interpolated first, as nlb_tools does
    x[1000:1013, 1] = np.nan
    full = resample_signal(x, factor)
    filled = x.copy()
    for d in range(2):
        ok = ~np.isnan(filled[:, d])
        filled[:, d] = np.interp(np.arange(len(x)), np.flatnonzero(ok), filled[ok, d])
    ref = signal.decimate(filled, factor, axis=0, n=500, ftype="fir")
    ref[np.isnan(x[::factor])] = np.nan
    np.testing.assert_array_equal(full, ref)
    bins = np.array([0, 1, 2, 50, 51, len(ref) - 2, len(ref) - 1])
    part = resample_signal(x, factor, bins=bins)
    np.testing.assert_allclose(part[bins], ref[bins], rtol=1e-12, atol=1e-9, equal_nan=True)
    others = np.setdiff1d(np.arange(len(ref)), bins)
    assert np.isnan(part[others]).all()


def test_numpy_filters_equal_scipys_bit_for_bit() -> None:
    """The resampling FIR and the PSTH kernel are built without importing scipy.signal
    (slow to import); they must be scipy's arrays exactly."""
    from scipy import signal

    from nlbsuite.nlb.tensors import fir_lowpass

    for factor in (2, 5, 10, 20, 40):
        ref = signal.firwin(501, 1.0 / factor, window="hamming")
        np.testing.assert_array_equal(fir_lowpass(501, 1.0 / factor), ref)
    for sd in (1, 10, 30, 60):
        window = signal.windows.gaussian(int(6 * sd), sd, sym=True)
        np.testing.assert_array_equal(gaussian_kernel(sd), window / window.sum())
