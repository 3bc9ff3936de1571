"""Pure metric functions and their per-trial statistics against independent references
(scikit-learn, scipy, direct formulas, rescoring resampled trials).

The differential tests against nlb_tools itself live in tests/oracle/.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score as sk_r2_score
from sklearn.model_selection import GridSearchCV

from nlbsuite.errors import UserError
from nlbsuite.scoring import (
    bits_per_spike,
    bits_per_spike_per_neuron,
    psth_r2,
    r2_score,
    speed_tp_correlation,
)
from nlbsuite.scoring.bootstrap import bootstrap_weights
from nlbsuite.scoring.decoding import ALPHAS, ridge_cv
from nlbsuite.scoring.stats import BitsPerSpike, Psth, TpCorr
from nlbsuite.synthetic_targets import make_case


def _direct_bps(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Textbook bits per spike with the log(n!) terms, NaN bins dropped."""
    keep = ~np.isnan(spikes)
    null = np.broadcast_to(np.nanmean(spikes, axis=(0, 1), keepdims=True), spikes.shape)

    def nll(r: np.ndarray) -> float:
        r, s = np.where(r[keep] == 0, 1e-9, r[keep]), spikes[keep]
        return float(np.sum(r - s * np.log(r) + gammaln(s + 1)))

    return (nll(np.array(null)) - nll(rates)) / np.nansum(spikes) / np.log(2)



# ---------------------------------------------------------------------------------------
# Pure metric functions
# ---------------------------------------------------------------------------------------


def test_bits_per_spike_matches_direct_formula_with_nan_and_zero_rates() -> None:
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 0.1, size=(12, 30, 7))
    spikes = rng.poisson(rates).astype(float)
    spikes[:4, :10] = np.nan  # unscored front window
    rates[rates < 0.03] = 0.0  # exact zeros count as 1e-9
    rates[:4, :10] = np.nan  # NaN predictions outside the window are allowed
    rates.flags.writeable = False
    spikes.flags.writeable = False
    assert bits_per_spike(rates, spikes) == pytest.approx(_direct_bps(rates, spikes), abs=1e-12)
    assert np.isnan(rates).sum() == 4 * 10 * 7  # untouched


def test_per_neuron_bits_per_spike_average_to_the_population_value() -> None:
    rng = np.random.default_rng(1)
    rates = rng.gamma(2.0, 0.2, size=(10, 25, 6))
    spikes = rng.poisson(rates).astype(float)
    per = bits_per_spike_per_neuron(rates, spikes)
    counts = spikes.sum(axis=(0, 1))
    assert per.shape == (6,)
    assert np.sum(per * counts) / counts.sum() == pytest.approx(bits_per_spike(rates, spikes))
    for n in range(6):
        one = bits_per_spike(rates[..., n : n + 1], spikes[..., n : n + 1])
        assert per[n] == pytest.approx(one, abs=1e-12)


def test_bits_per_spike_rejects_negative_and_nan_rates_in_window() -> None:
    spikes = np.ones((2, 3, 2))
    with pytest.raises(UserError, match="negative"):
        bits_per_spike(-np.ones((2, 3, 2)), spikes)
    bad = np.ones((2, 3, 2))
    bad[0, 0, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        bits_per_spike(bad, spikes)


def test_r2_score_matches_sklearn_including_constant_columns() -> None:
    rng = np.random.default_rng(2)
    true = rng.normal(size=(50, 4))
    true[:, 2] = 0.0  # constant truth, imperfect prediction -> 0
    pred = true + rng.normal(scale=0.5, size=true.shape)
    pred[:, 3] = true[:, 3]  # perfect prediction -> 1
    assert r2_score(true, pred) == pytest.approx(sk_r2_score(true, pred), abs=1e-12)
    true[:, 1] = 0.0
    pred[:, 1] = 0.0  # constant and exactly predicted -> 1
    assert r2_score(true, pred) == pytest.approx(sk_r2_score(true, pred), abs=1e-12)


@pytest.mark.parametrize(
    ("n", "noise", "collinear"), [(403, 1.0, False), (517, 30.0, False), (260, 0.5, True)]
)
def test_ridge_cv_matches_sklearn_gridsearch(n: int, noise: float, collinear: bool) -> None:
    rng = np.random.default_rng(n)
    x = rng.gamma(2.0, 0.1, size=(n, 12))
    if collinear:
        x[:, 5] = x[:, 4] * 2.0  # rank-deficient design
    w = rng.normal(size=(12, 2))
    y = x @ w + noise * rng.normal(scale=0.05, size=(n, 2))
    x_eval = rng.gamma(2.0, 0.1, size=(100, 12))
    if collinear:
        x_eval[:, 5] = x_eval[:, 4] * 2.0
    y_eval = x_eval @ w + noise * rng.normal(scale=0.05, size=(100, 2))

    ref = GridSearchCV(Ridge(), {"alpha": ALPHAS}).fit(x, y)
    fit = ridge_cv(x, y)
    assert fit.alpha == ref.best_params_["alpha"]
    np.testing.assert_allclose(fit.cv_scores, ref.cv_results_["mean_test_score"], atol=1e-9)
    np.testing.assert_allclose(fit.predict(x_eval), ref.predict(x_eval), atol=1e-8)
    assert r2_score(y_eval, fit.predict(x_eval)) == pytest.approx(
        ref.score(x_eval, y_eval), abs=1e-9
    )


def test_ridge_cv_picks_an_interior_alpha_when_regularisation_helps() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 40))
    y = x[:, :1] + rng.normal(scale=3.0, size=(60, 1))
    ref = GridSearchCV(Ridge(), {"alpha": ALPHAS}).fit(x, y)
    assert ridge_cv(x, y).alpha == ref.best_params_["alpha"]


def test_psth_r2_with_jitter_matches_an_explicit_loop() -> None:
    rng = np.random.default_rng(3)
    n_trials, n_bins, n_neurons = 9, 12, 4
    rates = rng.gamma(2.0, 0.2, size=(n_trials, n_bins, n_neurons))
    psth = rng.gamma(2.0, 0.2, size=(3, n_bins, n_neurons))
    psth[0, :3] = np.nan  # front-padded condition
    psth[1, -2:] = np.nan  # back-padded condition
    cond_idx = [np.array([0, 3, 5]), np.array([1, 2, 6]), np.array([4, 7, 8])]
    jitter = np.array([2, 0, 0, 1, 0, 0, -1, 0, 0])

    def shifted(x: np.ndarray, j: int) -> np.ndarray:
        out = np.full_like(x, np.nan)
        if j >= 0:
            out[j:] = x[: n_bins - j]
        else:
            out[:j] = x[-j:]
        return out

    true, pred = [], []
    for c, idx in enumerate(cond_idx):
        keep = ~np.isnan(psth[c, :, 0])
        mean = np.mean([shifted(rates[i], jitter[i]) for i in idx], axis=0)
        true.append(psth[c][keep])
        pred.append(mean[keep])
    expected = sk_r2_score(np.vstack(true), np.vstack(pred))
    assert psth_r2(psth, rates, cond_idx, jitter) == pytest.approx(expected, abs=1e-12)


def test_psth_r2_reports_nan_predictions_inside_the_window() -> None:
    rates = np.ones((2, 5, 2))
    psth = np.ones((1, 5, 2))
    with pytest.raises(UserError, match="PSTH window of condition 0"):
        psth_r2(psth, rates, [np.array([0, 1])], np.array([1, 0]))  # shift pads bin 0 with NaN


def test_speed_tp_correlation_matches_scipy_loop() -> None:
    rng = np.random.default_rng(4)
    n_trials, n_bins = 40, 20
    rates = rng.gamma(2.0, 0.2, size=(n_trials, n_bins, 5))
    spikes = rng.poisson(1.0, size=(n_trials, n_bins, 2)).astype(float)
    for i in range(n_trials):
        spikes[i, : rng.integers(0, 15)] = np.nan
    spikes[3, 5:8] = np.nan  # a window with a gap: kept bins differenced as adjacent
    behavior = np.stack(
        [rng.integers(0, 2, n_trials), np.full(n_trials, 180.0),
         rng.integers(0, 2, n_trials), rng.uniform(0.5, 1, n_trials),
         rng.uniform(0.5, 1.2, n_trials)], axis=1).astype(float)  # fmt: skip
    behavior[[7, 19]] = np.nan  # outliers
    masks = ~np.isnan(spikes[..., 0])
    speeds = np.array([np.mean(np.linalg.norm(np.diff(r[m], axis=0), axis=1))
                       for r, m in zip(rates, masks, strict=True)])  # fmt: skip
    conds = np.unique(behavior[:, :3], axis=0)
    conds = conds[~np.all(np.isnan(conds), axis=1)]
    rs = []
    for cond in conds:
        m = np.all(behavior[:, :3] == cond, axis=1)
        rs.append(pearsonr(speeds[m], behavior[m, -1])[0])
    assert speed_tp_correlation(spikes, rates, behavior) == pytest.approx(np.mean(rs), abs=1e-12)


def test_bootstrap_replicates_equal_rescoring_the_resampled_trials() -> None:
    """A replicate's trial weights give exactly the metric of the resampled trial set."""
    tgt, sub = make_case("dmfc_rsg_20", n_train=5, n_eval=120, seed=4)
    rates = np.concatenate([sub["eval_rates_heldin"], sub["eval_rates_heldout"]], axis=2)
    rates = rates.astype(np.float64)
    spikes, beh, jitter = tgt["eval_spikes_heldout"], tgt["eval_behavior"], tgt["eval_jitter"]
    w = bootstrap_weights(120, 3, seed=1)
    for row in w:
        idx = np.repeat(np.arange(120), row.astype(int))  # the drawn trials, with repeats
        cond = [np.flatnonzero(np.isin(idx, c)) for c in tgt["eval_cond_idx"]]
        expected = {
            "co": bits_per_spike(rates[idx, :, 45:], spikes[idx]),
            "psth": psth_r2(tgt["psth"], rates[idx], cond, jitter[idx]),
            "tp": speed_tp_correlation(spikes[idx], rates[idx], beh[idx]),
        }
        got = {
            "co": BitsPerSpike.build(rates[:, :, 45:], spikes, "x").score(row[None])[0],
            "psth": Psth.build(tgt["psth"], [rates], tgt["eval_cond_idx"], jitter, "x").score(
                row[None]
            )[0],
            "tp": TpCorr.build(spikes, [rates], beh).score(row[None])[0],
        }
        for name in expected:
            assert np.isfinite(expected[name]), name
            assert got[name] == pytest.approx(expected[name], abs=1e-10), name
