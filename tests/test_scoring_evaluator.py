"""The Evaluator, file scoring and the runner's path: formats, checks, messages, bootstrap,
nlb_tools' result structure, Lorenz and real-data scores.

The differential tests against nlb_tools itself live in tests/oracle/.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln

from nlbsuite.catalog import METRICS
from nlbsuite.data import GroundTruth, Rates
from nlbsuite.errors import UserError
from nlbsuite.scoring import (
    Evaluator,
    evaluate,
    score_by_key,
    score_phase,
    score_submission,
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
# Evaluator: formats, checks and messages
# ---------------------------------------------------------------------------------------


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
