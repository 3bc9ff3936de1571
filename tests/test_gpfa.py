import numpy as np
import pytest

pytest.importorskip("elephant")

from baselines.gpfa import GPFA, NLB_GPFA_PARAMS, GPFAConfig, Readout, fit_gpfa
from nlbsuite.adapter import cpu_threads
from nlbsuite.scoring import evaluate
from nlbsuite.testing import check_adapter


def test_nlb_settings_are_run_gpfas_default_dict():
    assert NLB_GPFA_PARAMS["mc_maze"] == (52, 0.01, 0.0)
    assert NLB_GPFA_PARAMS["mc_maze_medium"] == (28, 0.0, 0.0)
    assert NLB_GPFA_PARAMS["mc_maze_small"] == (18, 0.01, 0.0)
    assert GPFA().settings("mc_rtt") == (36, 0.0, 0.0)


def test_glm_alpha_is_nlbs_only_at_5_ms_else_cross_validated_unless_set():
    assert GPFA().settings("mc_maze_small", 20) == (18, 0.01, None)
    assert GPFA().settings("lorenz", 20)[2] is None
    assert GPFA(GPFAConfig(glm_alpha=0.1)).settings("mc_maze_small", 20)[2] == 0.1


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


@pytest.mark.parametrize(("n_bins", "same"), [(40, True), (35, True), (50, False)])
def test_the_seed_matters_only_where_elephant_cuts_random_overlaps(n_bins, same):
    """Elephant fits on 20-bin segments; only a trial needing 3+ segments with a leftover
    gets random overlaps, so 40- and 35-bin trials fit alike for every seed, 50-bin do not."""
    rng = np.random.default_rng(1)
    latent = np.sin(np.linspace(0, 6, n_bins))[None, :, None] * rng.normal(size=(10, 1, 1))
    spikes = rng.poisson(np.exp(latent * rng.normal(size=6) - 0.5)).astype(float)
    fits = []
    for seed in (0, 1):
        np.random.seed(seed)
        fits.append(fit_gpfa(spikes, 5, GPFAConfig(em_max_iters=5), 2).latents(spikes))
    assert np.array_equal(fits[0], fits[1]) == same


def _nlb_readout(train_f, eval_f, train_in, eval_in, train_out, alpha1, alpha2):
    """NLB run_gpfa.py's fit_rectlin(..., eval_spikes_heldin_s) then fit_poisson(...), as
    written there (per-neuron PoissonRegressor, max_iter 500, x5 while not converged)."""
    from sklearn.linear_model import PoissonRegressor, Ridge

    ridge = Ridge(alpha=alpha1).fit(np.vstack([train_f, eval_f]), np.vstack([train_in, eval_in]))
    tr_in, ev_in = ridge.predict(train_f), ridge.predict(eval_f)
    tr_in[tr_in < 1e-10] = 1e-10
    ev_in[ev_in < 1e-10] = 1e-10
    tr_out, ev_out = [], []
    for chan in range(train_out.shape[1]):
        pr = PoissonRegressor(alpha=alpha2, max_iter=500).fit(tr_in, train_out[:, chan])
        while pr.n_iter_ == pr.max_iter and pr.max_iter < 10000:
            pr = PoissonRegressor(alpha=alpha2, max_iter=pr.max_iter * 5)
            pr.fit(tr_in, train_out[:, chan])
        tr_out.append(pr.predict(tr_in))
        ev_out.append(pr.predict(ev_in))
    return tr_in, ev_in, np.stack(tr_out, axis=1), np.stack(ev_out, axis=1)


def test_readout_is_nlb_scripts_ridge_and_poisson_glms():
    """Held-in and held-out rates from given latents equal run_gpfa.py's, at its GLM alpha 0
    (where only its iteration rule keeps the fit finite) and at 0.01."""
    rng = np.random.default_rng(1)
    latents = rng.normal(size=(300, 4))
    heldin = rng.poisson(np.exp(latents @ rng.normal(scale=0.4, size=(4, 9)) - 1.0))
    heldout = rng.poisson(np.exp(latents[:200] @ rng.normal(scale=0.4, size=(4, 5)) - 1.0))
    for glm_alpha in (0.0, 0.01):
        with cpu_threads(1):  # tiny BLAS products crawl on many threads of a busy machine
            ref = _nlb_readout(
                latents[:200], latents[200:], heldin[:200], heldin[200:], heldout, 0.01, glm_alpha
            )
            readout = Readout.fit(latents, heldin, heldout, 200, 0.01, glm_alpha)
        (tr_in, tr_out), (ev_in, ev_out) = readout.rates(latents[:200]), readout.rates(latents[200:])
        np.testing.assert_allclose(tr_in, ref[0], rtol=1e-12)
        np.testing.assert_allclose(ev_in, ref[1], rtol=1e-12)
        np.testing.assert_allclose(tr_out, np.maximum(ref[2], 1e-9), rtol=1e-12)  # our clip
        np.testing.assert_allclose(ev_out, np.maximum(ref[3], 1e-9), rtol=1e-12)


def test_gpfa_passes_the_conformance_check_and_beats_the_null_on_lorenz(tiny_lorenz):
    # check_adapter: shapes, positivity, the same rates for a seed, pickling
    result = check_adapter(GPFA, tiny_lorenz, seed=1)
    model, runs = result.model, [result.rates]
    assert runs[0].eval_rates_heldin_forward.shape == (8, 5, 22)
    scores = evaluate(tiny_lorenz, runs[0])
    assert 0.02 < scores["co-bps"] < scores["ceiling co-bps"]
    cv = model.extras["cv"]
    assert model.extras["chosen_by"] == "cv" and len(cv["co_bps"]) == len(cv["glm_alphas"])
    assert model.extras["glm_alpha"] == cv["glm_alphas"][int(np.argmax(cv["co_bps"]))]
    assert (model.extras["latent_dim"], model.extras["ridge_alpha"]) == (3, 0.01)
