"""The compiled scorer kernels: equal to plain numpy, and float32 input scored exactly as its
float64 cast (nlb_tools casts submissions to float64 before any arithmetic)."""

from __future__ import annotations

import numpy as np
import pytest

from nlbsuite.scoring import bits_per_spike, kernels
from nlbsuite.scoring.stats import LOG_ZERO_RATE, ZERO_RATE


def _rates_and_spikes(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rates = rng.gamma(1.5, 0.3, size=(7, 30, 5)).astype(np.float32)
    rates[0, 0, 0] = 0.0
    spikes = rng.poisson(rates.astype(np.float64) * 2).astype(np.float64)
    spikes[1, :4] = np.nan
    spikes[2, 10, 3] = np.nan
    spikes[0, 0, 0] = 2.0  # a spike where the rate is zero
    return rates, spikes


def _poisson_sums(rates: np.ndarray, spikes: np.ndarray) -> tuple[np.ndarray, ...]:
    model, counts, bins = (np.full((rates.shape[0], rates.shape[2]), np.nan) for _ in range(3))
    bits = rates.view(np.int32 if rates.dtype == np.float32 else np.int64)
    n_bad = kernels.poisson_sums(rates, bits, spikes, ZERO_RATE, LOG_ZERO_RATE, model, counts, bins)
    return model, counts, bins, n_bad


def _log_cases(dtype: type) -> np.ndarray:
    """Positive normal floats of ``dtype``: random mantissas at every exponent, values
    near 1 and near the sqrt(2) split, powers of two and the extremes."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(5)
    exponents = np.arange(info.minexp, info.maxexp)
    random = rng.uniform(1.0, 2.0, size=(len(exponents), 40)) * np.exp2(exponents)[:, None]
    near = np.concatenate(
        [1.0 + rng.uniform(-1e-3, 1e-3, 2000), np.sqrt(2.0) * (1 + rng.uniform(-1e-6, 1e-6, 2000))]
    )
    special = np.array([1.0, 2.0, 0.5, np.sqrt(2.0), 1e-9, info.tiny, info.max])
    values = np.concatenate([random.ravel(), near, special, np.nextafter(special[:4], 3)])
    values = values[np.isfinite(values.astype(dtype))].astype(dtype)
    return values[values >= info.tiny]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_within_one_ulp_of_numpy_and_of_the_true_log(dtype: type) -> None:
    values = _log_cases(dtype)
    got = kernels.log(values, values.view(np.int32 if dtype == np.float32 else np.int64))
    want = np.log(values.astype(np.float64))
    ulp = np.spacing(np.abs(want))
    assert np.all(np.abs(got - want) <= ulp)  # numpy's log is within 1 ulp too
    exact = np.log(values.astype(np.longdouble))  # 64-bit mantissa on x86
    if np.finfo(np.longdouble).nmant > 52:
        assert np.all(np.abs(got - exact) < ulp)  # below one ulp, as fdlibm promises
    assert (got == want).mean() > 0.9


def test_poisson_sums_equal_numpy_and_float32_scores_as_its_float64_cast() -> None:
    rates32, spikes = _rates_and_spikes(0)
    rates64 = rates32.astype(np.float64)
    model, counts, bins, bad = _poisson_sums(rates32, spikes)
    assert bad  # the zero rate is reported (the caller checks it is not NaN or negative)
    scored = ~np.isnan(spikes)
    r = np.where(rates64 == 0, ZERO_RATE, rates64)
    expected = np.where(scored, r - np.nan_to_num(spikes) * np.log(r), 0.0).sum(axis=1)
    np.testing.assert_allclose(model, expected, rtol=1e-14)
    np.testing.assert_array_equal(counts, np.nansum(spikes, axis=1))
    np.testing.assert_array_equal(bins, scored.sum(axis=1))
    for got, want in zip(_poisson_sums(rates64, spikes), (model, counts, bins, bad), strict=True):
        np.testing.assert_array_equal(got, want)


def test_poisson_sums_flag_nan_and_negative_rates_only_in_scored_bins() -> None:
    rates, spikes = _rates_and_spikes(1)
    rates[0, 0, 0] = 0.5
    rates[1, 0, 0] = np.nan  # unscored bin (spike NaN): ignored
    rates[1, 1, 1] = -3.0
    assert not _poisson_sums(rates, spikes)[3]
    rates[3, 3, 3] = -1.0
    assert _poisson_sums(rates, spikes)[3]


@pytest.mark.parametrize("gap", [False, True])
def test_neural_speed_equals_numpy_and_float32_as_float64(gap: bool) -> None:
    rng = np.random.default_rng(2)
    heldin = rng.gamma(2.0, 0.2, size=(6, 25, 7)).astype(np.float32)
    heldout = rng.gamma(2.0, 0.2, size=(6, 25, 3)).astype(np.float32)
    keep = np.zeros((6, 25), dtype=bool)
    keep[:, 5:20] = True
    keep[4] = False
    keep[4, 3] = True  # one kept bin: no step, NaN
    if gap:
        keep[2, 9:12] = False  # kept bins on both sides are differenced as adjacent
    x = np.concatenate([heldin, heldout], axis=2).astype(np.float64)
    expected = np.array(
        [
            np.mean(np.linalg.norm(np.diff(x[i][keep[i]], axis=0), axis=1))
            if keep[i].sum() > 1
            else np.nan
            for i in range(6)
        ]
    )
    got32 = kernels.neural_speed(heldin, heldout, keep)
    np.testing.assert_allclose(got32, expected, rtol=1e-14)
    got64 = kernels.neural_speed(heldin.astype(np.float64), heldout.astype(np.float64), keep)
    np.testing.assert_array_equal(got32, got64)
    both = kernels.neural_speed(x, x[:, :, :0], keep)
    np.testing.assert_allclose(both, expected, rtol=1e-14)


def test_psth_residuals_equal_a_shifted_loop() -> None:
    rng = np.random.default_rng(3)
    heldin = rng.gamma(2.0, 0.2, size=(9, 12, 3)).astype(np.float32)
    heldout = rng.gamma(2.0, 0.2, size=(9, 12, 2)).astype(np.float32)
    rates = np.concatenate([heldin, heldout], axis=2).astype(np.float64)
    trials = np.array([0, 3, 5, 1, 2, 6, 8], dtype=np.intp)
    shifts = np.array([2, 0, 1, 0, 0, -1, 0], dtype=np.intp)
    ptr = np.array([0, 3, 6, 7], dtype=np.intp)
    window = np.zeros((3, 12), dtype=bool)
    window[0, 3:12] = True
    window[1, 1:10] = True
    window[1, 4] = False  # a gap inside the window
    bounds = np.array([[3, 12], [1, 10], [0, 0]], dtype=np.intp)  # condition 2: no window
    truth = rng.gamma(2.0, 0.2, size=(int(window.sum()), 5))
    expected = np.zeros((3, 5))
    row = 0
    for c in range(3):
        for t in np.flatnonzero(window[c]):
            mean = np.mean([rates[trials[k], t - shifts[k]] for k in range(ptr[c], ptr[c + 1])], 0)
            expected[c] += (truth[row] - mean) ** 2
            row += 1
    got, has_nan = kernels.psth_residuals(
        heldin, heldout, trials, shifts, ptr, bounds, window, truth
    )
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert not has_nan.any()
    got64, _ = kernels.psth_residuals(
        heldin.astype(np.float64), heldout.astype(np.float64), trials, shifts, ptr, bounds,
        window, truth,
    )  # fmt: skip
    np.testing.assert_array_equal(got, got64)
    heldout[5, 11, 1] = np.nan  # trial 5 (shift 1) shows bin 11 at bin 12: outside the window
    assert not kernels.psth_residuals(heldin, heldout, trials, shifts, ptr, bounds, window, truth)[
        1
    ].any()
    heldout[5, 8, 1] = np.nan  # shown at bin 9, inside condition 0's window
    _, has_nan = kernels.psth_residuals(heldin, heldout, trials, shifts, ptr, bounds, window, truth)
    assert has_nan.tolist() == [True, False, False]


def test_bits_per_spike_of_float32_rates_is_that_of_their_float64_cast() -> None:
    """nlb_tools casts to float64 first: a float32 log would be off by ~1e-9 bits/spike."""
    rng = np.random.default_rng(5)
    rates = rng.gamma(1.5, 0.05, size=(40, 50, 12)).astype(np.float32)
    spikes = rng.poisson(rates.astype(np.float64)).astype(np.float64)
    spikes[:, :10] = np.nan
    r, s = rates.astype(np.float64)[~np.isnan(spikes)], spikes[~np.isnan(spikes)]
    null = np.broadcast_to(np.nanmean(spikes, axis=(0, 1)), spikes.shape)[~np.isnan(spikes)]
    nll = np.sum(r - s * np.log(r))
    nll_null = np.sum(null - s * np.log(null))
    expected = (nll_null - nll) / s.sum() / np.log(2)
    assert bits_per_spike(rates, spikes) == pytest.approx(expected, abs=1e-13)
    assert bits_per_spike(rates, spikes) == bits_per_spike(rates.astype(np.float64), spikes)


@pytest.mark.parametrize("n_neurons", [1, 7, 15, 45, 64, 65, 137])
def test_poisson_sums_fold_lanes_per_neuron_for_any_neuron_count(n_neurons: int) -> None:
    rng = np.random.default_rng(n_neurons)
    rates = rng.gamma(1.5, 0.3, size=(4, 13, n_neurons)).astype(np.float32)
    spikes = rng.poisson(rates.astype(np.float64)).astype(np.float64)
    spikes[1, 2:5] = np.nan
    model, counts, bins, bad = _poisson_sums(rates, spikes)
    r = rates.astype(np.float64)
    scored = ~np.isnan(spikes)
    expected = np.where(scored, r - np.nan_to_num(spikes) * np.log(r), 0.0).sum(axis=1)
    np.testing.assert_allclose(model, expected, rtol=1e-14)
    np.testing.assert_array_equal(counts, np.nansum(spikes, axis=1))
    np.testing.assert_array_equal(bins, scored.sum(axis=1))
    assert bad == 0


@pytest.mark.parametrize("shape", [(3, 5, 0), (3, 0, 4), (0, 5, 4)])
def test_poisson_sums_of_empty_arrays_are_zero(shape: tuple[int, int, int]) -> None:
    rates = np.ones(shape, dtype=np.float32)
    model, counts, bins, bad = _poisson_sums(rates, np.ones(shape))
    assert model.shape == (shape[0], shape[2]) and bad == 0
    assert not model.any() and not counts.any() and not bins.any()


def test_poisson_sums_take_subnormal_and_infinite_rates_with_the_c_log() -> None:
    rates, spikes = _rates_and_spikes(6)
    rates[3, 5, 2] = np.float32(1e-42)  # subnormal in float32
    rates[4, 6, 1] = np.inf
    spikes[4, 6, 1] = 0.0  # an infinite rate without a spike: an infinite NLL
    model, _, _, _ = _poisson_sums(rates, spikes)
    r = rates.astype(np.float64)
    r = np.where(r == 0, ZERO_RATE, r)
    scored = ~np.isnan(spikes)
    with np.errstate(invalid="ignore"):
        expected = np.where(scored, r - np.nan_to_num(spikes) * np.log(r), 0.0).sum(axis=1)
    np.testing.assert_allclose(model[:4], expected[:4], rtol=1e-14)
    assert model[4, 1] == np.inf
    np.testing.assert_allclose(np.delete(model[4], 1), np.delete(expected[4], 1), rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float16, np.int64])
def test_other_dtypes_score_as_their_float64_cast(dtype: type) -> None:
    """The kernels take float32/float64 only: other rate dtypes are cast first."""
    from nlbsuite.scoring import psth_r2, speed_tp_correlation

    rng = np.random.default_rng(8)
    rates = rng.gamma(2.0, 1.5, size=(6, 12, 4)).astype(dtype)
    rates64 = rates.astype(np.float64)
    spikes = rng.poisson(rates64).astype(np.float64)
    spikes[:, :3] = np.nan  # outside the set-go window
    psth = np.stack([rates64[:3].mean(axis=0) + 0.1, rates64[3:].mean(axis=0)])
    cond_idx = [np.arange(3), np.arange(3, 6)]
    behavior = np.column_stack(
        [np.zeros(6), np.zeros(6), np.arange(6) % 2, np.ones(6), rng.uniform(0.5, 1.0, 6)]
    )
    for score, args in (
        (bits_per_spike, (spikes,)),
        (lambda r, c=cond_idx: psth_r2(psth, r, c), ()),
        (lambda r: speed_tp_correlation(spikes, r, behavior), ()),
    ):
        want = score(rates64, *args)
        assert np.isfinite(want)
        assert score(rates, *args) == want
