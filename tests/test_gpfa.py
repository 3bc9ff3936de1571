import numpy as np
import pytest

pytest.importorskip("elephant")

from baselines.gpfa import GPFA, NLB_GPFA_PARAMS, GPFAConfig, fit_gpfa
from nlbsuite.scoring import evaluate
from nlbsuite.testing import check_adapter


def test_nlb_settings_are_run_gpfas_default_dict():
    assert NLB_GPFA_PARAMS["mc_maze"] == (52, 0.01, 0.0)
    assert NLB_GPFA_PARAMS["mc_maze_medium"] == (28, 0.0, 0.0)
    assert NLB_GPFA_PARAMS["mc_maze_small"] == (18, 0.01, 0.0)
    assert GPFA().settings("mc_rtt") == (36, 0.0, 0.0)


def test_count_arrays_give_elephants_spike_train_result():
    """fit_gpfa on counts equals elephant's GPFA.fit_transform on the neo spike trains
    NLB's run_gpfa.py builds (spike times at bin starts, one per count)."""
    import neo
    import quantities as pq
    from elephant.gpfa import GPFA as ElephantGPFA

    rng = np.random.default_rng(0)
    latent = np.sin(np.linspace(0, 6, 25))[None, :, None] * rng.normal(size=(12, 1, 1))
    spikes = rng.poisson(np.exp(latent * rng.normal(size=7) - 0.5)).astype(float)
    spikes[:, :, 3] = 0  # a silent neuron: both drop it
    trains = [
        [
            neo.SpikeTrain(
                np.repeat(np.arange(25), trial[:, n].astype(int)) * 5.0 * pq.ms,
                t_stop=25 * 5.0 * pq.ms,
            )
            for n in range(7)
        ]
        for trial in spikes
    ]
    np.random.seed(3)
    ref = ElephantGPFA(bin_size=5 * pq.ms, x_dim=2, em_max_iters=15).fit_transform(trains)
    np.random.seed(3)
    ours = fit_gpfa(spikes, 5, GPFAConfig(em_max_iters=15), 2).latents(spikes)
    np.testing.assert_allclose(ours, np.stack([x.T for x in ref]), rtol=1e-10, atol=1e-12)


def test_gpfa_passes_the_conformance_check_and_beats_the_null_on_lorenz(tiny_lorenz):
    # check_adapter: shapes, positivity, the same rates for a seed, pickling
    result = check_adapter(GPFA, tiny_lorenz, seed=1)
    model, runs = result.model, [result.rates]
    assert runs[0].eval_rates_heldin_forward.shape == (8, 5, 22)
    scores = evaluate(tiny_lorenz, runs[0])
    assert 0.02 < scores["co-bps"] < scores["ceiling co-bps"]
    assert model.extras == {"latent_dim": 3, "ridge_alpha": 0.01, "glm_alpha": 0.0}
