"""Scorer tests against independent references (scikit-learn, scipy, direct formulas).

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

from nlbsuite.data import GroundTruth, Rates
from nlbsuite.errors import UserError
from nlbsuite.evaluation import (
    ALPHAS,
    METRICS,
    Evaluator,
    bits_per_spike,
    bits_per_spike_per_neuron,
    evaluate,
    parse_dataset_key,
    psth_r2,
    r2_score,
    ridge_cv,
    score_by_key,
    score_phase,
    score_submission,
    speed_tp_correlation,
)
from nlbsuite.synthetic_targets import make_case


def _frozen(tree: dict) -> dict:
    """The same arrays, read-only: any in-place write by the scorer raises."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, np.ndarray) and v.dtype != object:
            v = v.copy()
            v.flags.writeable = False
        out[k] = v
    return out


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


# ---------------------------------------------------------------------------------------
# Evaluator: formats, checks and messages
# ---------------------------------------------------------------------------------------


def test_parse_dataset_key() -> None:
    assert parse_dataset_key("mc_maze") == ("mc_maze", 5)
    assert parse_dataset_key("mc_maze_20") == ("mc_maze", 20)
    assert parse_dataset_key("mc_maze_small_20") == ("mc_maze_small", 20)
    assert parse_dataset_key("lorenz_20") == ("lorenz", 20)
    with pytest.raises(UserError, match=r"unknown dataset key 'mc_mazes'.*mc_maze_20"):
        parse_dataset_key("mc_mazes")


def test_evaluator_states_formats() -> None:
    ev = Evaluator("mc_maze_20")
    assert "eval_rates_heldout   (n_eval, 35, 45)" in ev.expected_input_format
    assert "train_rates_heldin   (n_train, 35, 137)" in ev.expected_input_format
    assert "train_rates" not in Evaluator("dmfc_rsg").expected_input_format
    assert "'tp corr'" in Evaluator("dmfc_rsg").expected_output_format
    tgt, _ = make_case("mc_maze_20", n_train=7, n_eval=5)
    shapes = ev.expected_shapes(tgt)
    assert shapes["train_rates_heldin"] == (7, 35, 137)
    assert shapes["eval_rates_heldout_forward"] == (5, 10, 45)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("eval_rates_heldout"),
         r"^submission: area2_bump_20/eval_rates_heldout: missing key; expected shape \(6, 30, 16\)"),
        (lambda s: s.__setitem__("eval_rates_heldin", s["eval_rates_heldin"][:5]),
         r"area2_bump_20/eval_rates_heldin: shape \(5, 30, 49\); expected \(6, 30, 49\)"),
        (lambda s: s.__setitem__("train_rates_heldout", s["train_rates_heldout"][:, :, :3]),
         r"train_rates_heldout: shape \(10, 30, 3\); expected \(10, 30, 16\)"),
        (lambda s: s.__setitem__("eval_rates_heldin", np.full((6, 30, 49), "x")),
         r"eval_rates_heldin: dtype <U1; expected float32"),
        (lambda s: s["eval_rates_heldout"].__setitem__((0, 0, 0), -1.0), "negative"),
        (lambda s: s["eval_rates_heldout"].__setitem__((0, 0, 0), np.nan), "NaN"),
        (lambda s: s.pop("eval_rates_heldout_forward"),
         "eval_rates_heldout_forward: missing key; eval_rates_heldin_forward is given"),
        (lambda s: s["eval_rates_heldin_forward"].__setitem__((0, 0, 0), np.inf),
         "eval_rates_heldin_forward: 1 infinite values"),
    ],
)  # fmt: skip
def test_evaluator_rejects_bad_submissions_with_precise_messages(change, message) -> None:
    tgt, sub = make_case("area2_bump_20", n_train=10, n_eval=6)
    sub = {k: v.copy() for k, v in sub.items()}
    change(sub)
    with pytest.raises(UserError, match=message):
        Evaluator("area2_bump_20").eval(sub, tgt)


def test_scoring_never_modifies_inputs() -> None:
    tgt, sub = make_case("mc_maze_small_20", n_train=20, n_eval=12, kind="zeros")
    frozen_sub, frozen_tgt = _frozen(sub), _frozen(tgt)
    scores = Evaluator("mc_maze_small_20").eval(frozen_sub, frozen_tgt)
    assert set(scores.metrics) == {"co-bps", "vel R2", "psth R2", "fp-bps"}
    for k, v in sub.items():
        np.testing.assert_array_equal(frozen_sub[k], v)


def test_bootstrap_intervals_are_seeded_and_leave_official_numbers_alone() -> None:
    tgt, sub = make_case("dmfc_rsg_20", n_train=10, n_eval=60, seed=2)
    ev = Evaluator("dmfc_rsg_20")
    plain = ev.eval(sub, tgt)
    boot = ev.eval(sub, tgt, n_boot=200, seed=7)
    again = ev.eval(sub, tgt, n_boot=200, seed=7)
    other = ev.eval(sub, tgt, n_boot=200, seed=8)
    assert plain.metrics == boot.metrics
    assert boot.ci == again.ci
    assert boot.ci != other.ci
    assert set(boot.ci) == {"co-bps", "tp corr", "psth R2", "fp-bps"}
    for name, (lo, hi) in boot.ci.items():
        assert lo < boot.metrics[name] < hi, name
        assert hi - lo < 1.0, name
    flat = boot.flat()
    assert flat["co-bps ci_lo"] == boot.ci["co-bps"][0]


def test_score_submission_returns_nlb_tools_structure() -> None:
    target, submission = {}, {}
    for key in ("mc_maze_small", "mc_maze_large_20", "mc_rtt", "dmfc_rsg"):
        tgt, sub = make_case(key, n_train=12, n_eval=40, seed=3)
        target[key], submission[key] = tgt, sub
    result = score_submission(target, submission)
    assert [next(iter(d)) for d in result] == [
        "mc_rtt_split", "dmfc_rsg_split", "mc_maze_scaling_split", "mc_maze_scaling_20_split",
    ]  # fmt: skip
    assert list(result[0]["mc_rtt_split"]) == ["co-bps", "vel R2", "fp-bps"]
    assert list(result[1]["dmfc_rsg_split"]) == ["co-bps", "tp corr", "psth R2", "fp-bps"]
    assert list(result[2]["mc_maze_scaling_split"]) == [
        "[100] co-bps", "[100] vel R2", "[100] psth R2", "[100] fp-bps",
    ]  # fmt: skip
    by_key = score_by_key(target, submission)
    assert (
        result[3]["mc_maze_scaling_20_split"]["[500] co-bps"]
        == by_key["mc_maze_large_20"].metrics["co-bps"]
    )


def test_score_by_key_skips_keys_without_target_and_rejects_unknown_keys() -> None:
    tgt, sub = make_case("mc_rtt", n_train=10, n_eval=5)
    skipped: list[str] = []
    out = score_by_key({"mc_rtt": tgt}, {"mc_rtt": sub, "mc_rtt_20": {}}, skipped=skipped)
    assert list(out) == ["mc_rtt"] and skipped == ["mc_rtt_20"]
    with pytest.raises(UserError, match="unknown dataset key 'mc_rt'"):
        score_by_key({"mc_rtt": tgt}, {"mc_rt": sub})
    with pytest.raises(UserError, match="nothing to score"):
        score_by_key({"mc_maze": tgt}, {"mc_rtt": sub})


# ---------------------------------------------------------------------------------------
# PhaseData path (the runner) and real data
# ---------------------------------------------------------------------------------------


def test_evaluate_lorenz_truth_is_its_own_ceiling(tiny_lorenz) -> None:
    truth: GroundTruth = tiny_lorenz.truth
    metrics = evaluate(tiny_lorenz, truth.as_rates())
    assert metrics["co-bps"] > 0
    assert metrics["ceiling co-bps"] == pytest.approx(metrics["co-bps"])
    assert metrics["co-bps / ceiling"] == pytest.approx(1.0)
    assert metrics["rate R2"] == pytest.approx(1.0)
    assert metrics["psth R2"] > 0.99  # true rates are the condition PSTHs
    assert "vel R2" not in metrics
    assert all(name in METRICS for name in metrics)


def test_evaluate_lorenz_noisy_rates_and_bootstrap(tiny_lorenz) -> None:
    truth = tiny_lorenz.truth
    rng = np.random.default_rng(0)
    arrays = {
        k: v * rng.lognormal(0, 0.1, size=v.shape) for k, v in truth.as_rates().arrays().items()
    }
    rates = Rates(**arrays)
    plain = evaluate(tiny_lorenz, rates)
    assert plain["co-bps / ceiling"] == pytest.approx(plain["co-bps"] / plain["ceiling co-bps"])
    assert 0 < plain["rate R2"] < 1
    scores = score_phase(tiny_lorenz, rates, n_boot=100, seed=0)
    assert scores.metrics == plain
    assert set(scores.ci) == set(plain)
    assert scores.per_neuron_bps.shape == (tiny_lorenz.n_heldout,)


def test_evaluate_real_mc_maze_small_co_bps(mc_maze_small_val) -> None:
    from nlbsuite.data import phase_data_from_h5

    data = phase_data_from_h5(mc_maze_small_val)
    n_eval = data.eval_spikes_heldin.shape[0]
    # A condition-free baseline: each neuron's smoothed mean train rate per bin.
    from scipy.ndimage import gaussian_filter1d

    mean_in = data.train_spikes_heldin.mean(axis=0, keepdims=True)
    mean_out = gaussian_filter1d(data.train_spikes_heldout.mean(axis=0, keepdims=True), 5, axis=1)
    mean_out = 0.5 * mean_out + 0.5 * mean_out.mean(axis=1, keepdims=True)
    rates = Rates(
        train_rates_heldin=None, train_rates_heldout=None,
        eval_rates_heldin=np.repeat(mean_in, n_eval, axis=0),
        eval_rates_heldout=np.repeat(mean_out, n_eval, axis=0),
    )  # fmt: skip
    metrics = evaluate(data, rates)
    expected = _direct_bps(rates.eval_rates_heldout, data.target.eval_spikes_heldout)
    assert metrics["co-bps"] == pytest.approx(expected, abs=1e-12)
    assert 0.0 < metrics["co-bps"] < 0.2  # a trial-average baseline on real data


def test_bootstrap_replicates_equal_rescoring_the_resampled_trials() -> None:
    """A replicate's trial weights give exactly the metric of the resampled trial set."""
    from nlbsuite.evaluation import _BitsPerSpike, _Psth, _TpCorr, bootstrap_weights

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
            "co": _BitsPerSpike.build(rates[:, :, 45:], spikes, "x").score(row[None])[0],
            "psth": _Psth.build(tgt["psth"], [rates], tgt["eval_cond_idx"], jitter, "x").score(
                row[None]
            )[0],
            "tp": _TpCorr.build(spikes, [rates], beh).score(row[None])[0],
        }
        for name in expected:
            assert np.isfinite(expected[name]), name
            assert got[name] == pytest.approx(expected[name], abs=1e-10), name
