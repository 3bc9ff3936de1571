import dataclasses

import numpy as np
import pytest
import scipy.signal as signal
from sklearn.linear_model import PoissonRegressor

from baselines.smoothing import (
    NLB_SMOOTHING_PARAMS,
    Smoothing,
    cross_validate_smoothing,
    fit_poisson_glms,
    log_smoothed,
    predict_poisson_glms,
    smooth_spikes,
)
from benchmarks.bench_gpfa import fit_poisson_batch
from nlbsuite.data import rebin
from nlbsuite.datasets import load_dataset
from nlbsuite.errors import UserError
from nlbsuite.scoring import bits_per_spike, evaluate
from nlbsuite.testing import check_adapter


def test_smoothing_equals_nlb_per_channel_np_convolve():
    rng = np.random.default_rng(0)
    spikes = rng.poisson(0.5, size=(3, 80, 4)).astype(float)
    for sd, bin_ms in [(50, 5), (60, 20), (30, 5)]:
        window = signal.windows.gaussian(int(6 * sd / bin_ms), int(sd / bin_ms), sym=True)
        window /= window.sum()
        expected = np.apply_along_axis(lambda x, w=window: np.convolve(x, w, "same"), 1, spikes)
        np.testing.assert_allclose(smooth_spikes(spikes, sd, bin_ms), expected, atol=1e-12)


def test_nlb_parameters():
    assert NLB_SMOOTHING_PARAMS["mc_maze"] == (50, 0.01)
    assert NLB_SMOOTHING_PARAMS["dmfc_rsg"] == (60, 0.001)
    assert NLB_SMOOTHING_PARAMS["mc_maze_small"] == (60, 0.1)


def test_smoothing_passes_the_adapter_conformance_check(tiny_lorenz):
    # Fixed kernel and penalty: the check fits twice, the cross-validation is tested below.
    result = check_adapter(Smoothing, tiny_lorenz, overrides={"kern_sd_ms": 40.0, "alpha": 0.01})
    assert result.model.choose_params(tiny_lorenz) == (40.0, 0.01)


def test_smoothing_beats_the_null_on_lorenz(tiny_lorenz):
    model = Smoothing()
    model.fit(tiny_lorenz.model_input())
    rates = model.predict(tiny_lorenz.model_input())
    assert rates.eval_rates_heldout.shape == tiny_lorenz.target.eval_spikes_heldout.shape
    assert rates.eval_rates_heldin_forward.shape == (8, 5, 22)
    scores = evaluate(tiny_lorenz, rates)
    assert 0.05 < scores["co-bps"] < scores["ceiling co-bps"]
    assert model.n_parameters() == 8 * 23 + 5 * 30


# ---- NLB's tuned values at 5 ms, cross-validation elsewhere ----------------------------


def _poisson_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 5))
    w = rng.normal(scale=0.4, size=(5, 3))
    return x, rng.poisson(np.exp(x @ w - 1.0)).astype(float)


def test_batch_glm_equals_sklearn_poisson_regressor():
    x, y = _poisson_problem()
    for alpha in (0.0, 0.01, 1.0):
        theta = fit_poisson_batch(x, y, alpha, gtol=1e-9)
        for chan in range(y.shape[1]):
            ref = PoissonRegressor(alpha=alpha, tol=1e-10, max_iter=10000).fit(x, y[:, chan])
            np.testing.assert_allclose(theta[:-1, chan], ref.coef_, atol=1e-5)
            np.testing.assert_allclose(theta[-1, chan], ref.intercept_, atol=1e-5)


def _spikes(seed: int, n_trials: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Held-in (trial, 30, 6) and held-out (trial, 30, 2) spikes sharing a slow latent."""
    rng = np.random.default_rng(seed)
    latent = np.cumsum(rng.normal(size=(n_trials, 30, 1)), axis=1) * 0.3
    heldin = rng.poisson(np.exp(latent * rng.normal(size=6) - 1.0)).astype(float)
    heldout = rng.poisson(np.exp(latent * rng.normal(size=2) - 1.0)).astype(float)
    return heldin, heldout


def test_cross_validation_scores_are_nlb_sweeps_scores():
    """Each grid cell is nlb_tools' sweep's score: the shipped readout (NLB's early-stopped
    sklearn fit per neuron) on trials other than k::5, bits per spike of trials k::5,
    averaged over folds; so the argmax is the sweep's."""
    heldin, heldout = _spikes(1)
    sds, alphas = (20.0, 60.0), (0.01, 1.0)
    cv = cross_validate_smoothing(heldin, heldout, 5, sds, alphas, n_folds=5)
    expected = np.zeros((2, 2))
    for i, sd in enumerate(sds):
        x = log_smoothed(heldin, sd, 5)
        for j, alpha in enumerate(alphas):
            folds = []
            for k in range(5):
                test = np.arange(20) % 5 == k
                glms = fit_poisson_glms(
                    x[~test].reshape(-1, 6), heldout[~test].reshape(-1, 2), alpha
                )
                rates = predict_poisson_glms(glms, x[test].reshape(-1, 6)).reshape(-1, 30, 2)
                folds.append(bits_per_spike(rates, heldout[test]))
            expected[i, j] = np.mean(folds)
    np.testing.assert_array_equal(cv.scores, expected)
    assert cv.best == (sds[np.argmax(expected) // 2], alphas[np.argmax(expected) % 2])


def test_cross_validation_prefers_the_strongest_penalty_for_unrelated_neurons():
    rng = np.random.default_rng(2)
    heldin = rng.poisson(0.5, size=(30, 40, 8)).astype(float)
    heldout = rng.poisson(0.3, size=(30, 40, 3)).astype(float)  # independent of held-in
    cv = cross_validate_smoothing(heldin, heldout, 5, (30.0,), (0.001, 1.0), n_folds=5)
    assert cv.best == (30.0, 1.0)
    assert cv.scores[0, 1] > cv.scores[0, 0]


def test_parameters_come_from_nlb_at_5ms_and_from_cross_validation_otherwise(tiny_lorenz):
    data = tiny_lorenz.model_input()
    model = Smoothing(Smoothing.make_config("smoke", {"cv_kern_sds_ms": (40.0, 80.0)}))
    model.fit(data)
    assert model.extras["chosen_by"] == "cv"
    assert model.extras["kern_sd_ms"] in (40.0, 80.0)
    assert model.extras["alpha"] in (0.001, 0.01, 0.1, 1.0)
    assert np.asarray(model.extras["cv"]["co_bps"]).shape == (2, 4)

    maze5 = dataclasses.replace(data, dataset="mc_maze_small", bin_width_ms=5)
    assert Smoothing().choose_params(maze5) == (60.0, 0.1)
    fixed = Smoothing(Smoothing.make_config("cpu", {"kern_sd_ms": 40.0, "alpha": 0.5}))
    assert fixed.choose_params(data) == (40.0, 0.5)


def test_smoothing_at_20ms_beats_the_null_on_real_mc_maze_small(mc_maze_small_val):
    """Regression: NLB's 5 ms values reused at 20 ms gave co-bps -0.105 on these trials."""
    data = load_dataset(None, path=mc_maze_small_val, bin_width_ms=20)
    assert data.n_bins == 35 and data.n_forward == 10
    grid = {"cv_kern_sds_ms": (40.0, 60.0), "cv_alphas": (0.01, 1.0)}  # a quarter of NLB's
    model = Smoothing(Smoothing.make_config("cpu", grid))
    model.fit(data.model_input())
    scores = evaluate(data, model.predict(data.model_input()))
    assert model.extras["chosen_by"] == "cv"
    assert scores["co-bps"] > 0.08


def test_rebin_sums_spikes_and_rates_and_averages_behaviour(tiny_lorenz):
    data = dataclasses.replace(
        tiny_lorenz,
        train_behavior=np.arange(32 * 20 * 2, dtype=float).reshape(32, 20, 2),
        source="lorenz",
    )
    wide = rebin(data, 5)
    assert (wide.bin_width_ms, wide.n_bins, wide.n_forward) == (100, 4, 1)
    np.testing.assert_array_equal(
        wide.train_spikes_heldin[:, 1], data.train_spikes_heldin[:, 5:10].sum(axis=1)
    )
    np.testing.assert_array_equal(
        wide.target.eval_spikes_heldin_forward[:, 0],
        data.target.eval_spikes_heldin_forward.sum(axis=1),
    )
    np.testing.assert_allclose(
        wide.truth.eval_rates_heldout[:, 3], data.truth.eval_rates_heldout[:, 15:].sum(axis=1)
    )
    np.testing.assert_allclose(wide.train_behavior[0, 0], [4.0, 5.0])  # mean of bins 0..4
    assert "summed over groups of 5 bins: 20 -> 100 ms" in wide.source
    with pytest.raises(UserError, match="not a multiple of the factor 3"):
        rebin(data, 3)
