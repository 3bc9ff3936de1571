import numpy as np

from nlbsuite.lorenz import LorenzSpec, lorenz_trajectories, make_lorenz
from nlbsuite.scoring import evaluate


def test_lorenz_integrator_matches_fixed_point_and_flow():
    # The origin is a fixed point; a state off the attractor moves as dx/dt = sigma (y - x).
    origin = lorenz_trajectories(np.zeros((1, 3)), 5, 0.01)
    assert np.all(origin == 0)
    traj = lorenz_trajectories(np.array([[1.0, 2.0, 3.0]]), 2, 1e-4)
    np.testing.assert_allclose((traj[0, 1, 0] - 1.0) / 1e-4, 10.0 * (2.0 - 1.0), rtol=1e-3)


def test_same_seed_same_data_and_other_seed_differs():
    a = make_lorenz(size="tiny", seed=3)
    b = make_lorenz(size="tiny", seed=3)
    c = make_lorenz(size="tiny", seed=4)
    np.testing.assert_array_equal(a.train_spikes_heldin, b.train_spikes_heldin)
    np.testing.assert_array_equal(a.truth.eval_rates_heldout, b.truth.eval_rates_heldout)
    assert not np.array_equal(a.train_spikes_heldin, c.train_spikes_heldin)


def test_default_size_shapes_and_splits():
    val = make_lorenz(phase="val")
    test = make_lorenz(phase="test")
    # 65 conditions x 20 trials: 3 val + 3 test per condition, the rest train.
    assert val.train_spikes_heldin.shape == (65 * 14, 50, 22)
    assert val.eval_spikes_heldin.shape == (65 * 3, 50, 22)
    assert val.train_spikes_heldout_forward.shape == (65 * 14, 10, 8)
    assert test.train_spikes_heldin.shape == (65 * 17, 50, 22)
    assert test.eval_spikes_heldin.shape == (65 * 3, 50, 22)
    assert val.key == "lorenz_20" and val.n_forward == 10
    # every condition appears among the eval trials
    assert sorted(set(val.meta["eval_conditions"])) == list(range(65))


def test_true_rates_match_spike_counts_and_score_the_ceiling():
    data = make_lorenz(size="tiny")
    truth = data.truth
    # spikes are Poisson draws of the true rates: means agree over many samples
    assert abs(data.train_spikes_heldin.mean() - truth.train_rates_heldin.mean()) < 0.05
    scores = evaluate(data, truth.as_rates())
    assert scores["rate R2"] == 1.0
    assert scores["co-bps / ceiling"] == 1.0
    assert scores["co-bps"] > 0.2


def test_custom_spec_and_bin_width():
    spec = LorenzSpec(
        n_conditions=3, trials_per_condition=10, trial_ms=200, forward_ms=40, n_neurons=12
    )
    data = make_lorenz(size=spec, bin_width_ms=5)
    assert data.n_bins == 40 and data.n_forward == 8
    assert data.n_heldin + data.n_heldout == 12
