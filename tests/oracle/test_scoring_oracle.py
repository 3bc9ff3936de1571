"""Differential tests: nlbsuite's scorer against nlb_tools 0.0.4's ``evaluate``.

Random and structured submissions for every dataset layout at both bin widths, as dicts
and as files (targets written by nlb_tools' own ``save_to_h5``), must score the same within
1e-6 on every metric, with nlb_tools' result structure. Run with the oracle venv:
``python -m pytest -m oracle tests/oracle``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

nlb_eval = pytest.importorskip("nlb_tools.evaluation")
from nlb_tools.make_tensors import save_to_h5  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from nlbsuite.scoring import (  # noqa: E402
    bits_per_spike,
    score_submission,
    speed_tp_correlation,
)
from nlbsuite.submission import write_submission, write_target  # noqa: E402
from nlbsuite.synthetic_targets import make_case  # noqa: E402

pytestmark = pytest.mark.oracle

DATASETS = ("mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium",
            "mc_maze_small")  # fmt: skip
KEYS = [d + s for d in DATASETS for s in ("", "_20")]
TOL = 1e-6


@pytest.fixture(autouse=True)
def _quiet_single_thread() -> Iterator[None]:
    """nlb_tools logs and warns a lot; one BLAS thread keeps 45 sklearn fits fast on a
    shared machine."""
    logging.disable(logging.WARNING)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        yield
    logging.disable(logging.NOTSET)


def assert_same(expected: list[dict], got: list[dict]) -> None:
    """Same splits in the same order, same metric names, values within TOL."""
    assert [list(d) for d in got] == [list(d) for d in expected]
    for exp, res in zip(expected, got, strict=True):
        for split, metrics in exp.items():
            assert list(res[split]) == list(metrics), split
            for name, value in metrics.items():
                assert np.isfinite(value), (split, name)
                assert abs(res[split][name] - value) <= TOL, (split, name, value, res[split][name])


@pytest.mark.parametrize("kind", ["structured", "random", "zeros"])
@pytest.mark.parametrize("key", KEYS)
def test_every_layout_matches_nlb_tools(key: str, kind: str) -> None:
    seed = KEYS.index(key) * 3 + ["structured", "random", "zeros"].index(kind)
    target, submission = make_case(key, n_train=40, n_eval=64, seed=seed, kind=kind)
    expected = nlb_eval.evaluate({key: target}, {key: submission})
    assert_same(expected, score_submission({key: target}, {key: submission}))


@pytest.mark.parametrize("key", ["dmfc_rsg", "dmfc_rsg_20"])
def test_dmfc_test_phase_without_jitter_matches(key: str) -> None:
    target, submission = make_case(key, n_train=10, n_eval=80, seed=11, phase="test")
    assert not target["eval_jitter"].any()
    expected = nlb_eval.evaluate({key: target}, {key: submission})
    assert_same(expected, score_submission({key: target}, {key: submission}))


def test_files_with_many_datasets_match(tmp_path) -> None:
    """Target written by nlb_tools (vlen condition indices, float32), submission by nlbsuite."""
    keys = ["mc_maze", "mc_maze_20", "mc_rtt_20", "area2_bump", "dmfc_rsg_20",
            "mc_maze_large", "mc_maze_medium_20", "mc_maze_small", "mc_maze_small_20"]  # fmt: skip
    targets, submissions = {}, {}
    for i, key in enumerate(keys):
        targets[key], submissions[key] = make_case(key, n_train=30, n_eval=64, seed=100 + i)
    target_path = str(tmp_path / "eval_target.h5")
    save_to_h5(targets, target_path)
    sub_path = str(write_submission(tmp_path / "submission.h5", submissions))
    expected = nlb_eval.evaluate(target_path, sub_path)
    assert [next(iter(d)) for d in expected][-2:] == [
        "mc_maze_scaling_split", "mc_maze_scaling_20_split",
    ]  # fmt: skip
    assert_same(expected, score_submission(target_path, sub_path))
    nlb_sub_path = str(tmp_path / "submission_by_nlb_tools.h5")  # float32 via dlen=32
    save_to_h5(submissions, nlb_sub_path)
    assert_same(nlb_eval.evaluate(target_path, nlb_sub_path),
                score_submission(target_path, nlb_sub_path))  # fmt: skip


def test_nlbsuite_target_files_are_read_by_nlb_tools(tmp_path) -> None:
    targets, submissions = {}, {}
    for i, key in enumerate(["area2_bump_20", "dmfc_rsg"]):
        targets[key], submissions[key] = make_case(key, n_train=30, n_eval=64, seed=200 + i)
    target_path = str(write_target(tmp_path / "t.h5", targets))
    sub_path = str(write_submission(tmp_path / "s.h5", submissions))
    expected = nlb_eval.evaluate(target_path, sub_path)
    assert_same(expected, score_submission(target_path, sub_path))


def test_bits_per_spike_on_real_mc_maze_small(mc_maze_small_val) -> None:
    import h5py

    with h5py.File(mc_maze_small_val) as f:
        train = f["train_spikes_heldout"][()].astype(float)
        spikes = f["eval_spikes_heldout"][()].astype(float)
    rates = np.repeat(train.mean(axis=0, keepdims=True), len(spikes), axis=0)  # has zeros
    ours = bits_per_spike(rates, spikes)
    theirs = nlb_eval.bits_per_spike(rates.copy(), spikes)
    assert abs(ours - theirs) <= TOL


def test_nlb_tools_overwrites_zero_rates_but_nlbsuite_does_not() -> None:
    rates = np.array([[[0.0, 0.5], [0.2, 0.0]]])
    spikes = np.array([[[0.0, 1.0], [1.0, 0.0]]])
    kept = rates.copy()
    ours = bits_per_spike(rates, spikes)
    np.testing.assert_array_equal(rates, kept)
    theirs = nlb_eval.bits_per_spike(rates, spikes)
    assert abs(ours - theirs) <= TOL
    assert rates[0, 0, 0] == 1e-9  # nlb_tools changed the caller's array


def test_bits_per_spike_and_speed_edge_cases_match() -> None:
    """float32 views, NaN and negative rates in unscored bins, zero
    rates where spikes fall, and set-go windows with gaps or < 2 bins."""
    rng = np.random.default_rng(5)
    rates = rng.gamma(2.0, 0.2, size=(40, 30, 7)).astype(np.float32)
    spikes = rng.poisson(rates).astype(np.float64)
    spikes[:, :9] = np.nan  # front padding, as DMFC_RSG
    spikes[3, 20:, 2] = np.nan  # a neuron-specific gap
    rates[:, :5] = np.nan
    rates[1, 6] = -1.0
    rates[2, 15:18] = 0.0
    spikes[2, 15:18] = 2.0
    view = np.swapaxes(np.swapaxes(rates, 0, 1).copy(), 0, 1)  # non-contiguous
    theirs = nlb_eval.bits_per_spike(rates.astype(float), spikes)
    assert abs(bits_per_spike(view, spikes) - theirs) <= TOL
    assert abs(bits_per_spike(view, spikes) - theirs) <= 1e-12  # float32 scored as float64

    rates = rng.gamma(2.0, 0.2, size=(60, 30, 9)).astype(np.float32)
    held = rng.poisson(1.0, size=(60, 30, 3)).astype(np.float64)
    held[:, :4] = np.nan
    held[np.arange(60) % 5 == 0, 10:12] = np.nan  # windows with gaps
    held[7, :28] = np.nan  # a window of just 2 bins
    behavior = np.column_stack(
        [rng.integers(0, 2, 60), rng.choice([0.0, 180.0], 60), np.ones(60), np.ones(60),
         rng.uniform(0.5, 1.0, 60)]
    )  # fmt: skip
    ours = speed_tp_correlation(held, rates, behavior)
    theirs = nlb_eval.speed_tp_correlation(held, rates.astype(float), behavior)
    assert np.isfinite(theirs) and abs(ours - theirs) <= 1e-12
