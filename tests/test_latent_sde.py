"""Latent SDE adapter: the conformance check (shapes, determinism, pickling: check_adapter),
smoke training of each drift, intervals, and the oscillator / path-KL pieces checked against
closed forms."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchsde")

from baselines.latent_sde import (  # noqa: E402
    DRIFTS,
    LatentSDE,
    LatentSDEConfig,
    LatentSDEModule,
    OscillatorDrift,
    PredictiveIntervals,
    interval_coverage,
    predictive_interval,
    steps_per_bin,
)
from nlbsuite.data import GroundTruth, PhaseData, Rates, phase_data_from_h5  # noqa: E402
from nlbsuite.errors import UserError  # noqa: E402
from nlbsuite.testing import check_adapter, check_rates  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the test machine is shared, and it keeps CPU results reproducible."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fit(data: PhaseData, seed: int = 0, **overrides) -> LatentSDE:
    model = LatentSDE(LatentSDE.make_config("smoke", overrides), seed=seed)
    model.fit(data.model_input())
    return model


@pytest.fixture(scope="module")
def hybrid(tiny_lorenz: PhaseData) -> LatentSDE:
    """The smoke preset's model (hybrid drift), fitted by the conformance check."""
    model = check_adapter(LatentSDE, tiny_lorenz).model
    assert isinstance(model, LatentSDE) and model.cfg.drift == "hybrid"
    return model


@pytest.mark.parametrize("drift", [d for d in DRIFTS if d != "hybrid"])
def test_each_drift_trains_and_loss_falls(tiny_lorenz: PhaseData, drift: str) -> None:
    model = fit(tiny_lorenz, drift=drift)
    assert len(model.history) == model.cfg.epochs
    assert model.history[-1] < 0.97 * model.history[0]
    check_rates(model.predict(tiny_lorenz.model_input()), tiny_lorenz)


def test_hybrid_trains_and_keeps_its_best_validated_checkpoint(hybrid: LatentSDE) -> None:
    assert hybrid.history[-1] < 0.97 * hybrid.history[0]
    epochs = [epoch for epoch, _ in hybrid.val_history]
    assert epochs == [2, 5, 7]  # every eval_every=3 epochs and the last of 8


def test_hybrid_has_fewer_parameters_than_neural(tiny_lorenz: PhaseData) -> None:
    cfg = {"epochs": 1}
    sizes = {d: fit(tiny_lorenz, drift=d, **cfg).n_parameters() for d in DRIFTS}
    assert sizes["oscillator"] < sizes["hybrid"] < sizes["neural"]
    n = LatentSDE.presets["smoke"]["n_oscillators"]
    drift = OscillatorDrift(n, step_s=0.02, omega_hz=(1.0, 2.0))
    assert sum(p.numel() for p in drift.parameters()) == 2 * n + n * n  # omega, gamma, K


def test_predict_intervals_bracket_the_samples(hybrid: LatentSDE, tiny_lorenz: PhaseData) -> None:
    intervals = hybrid.predict_intervals(tiny_lorenz.model_input(), level=0.9)
    assert isinstance(intervals, PredictiveIntervals) and intervals.level == 0.9
    mean = hybrid.predict(tiny_lorenz.model_input())
    for key, arr in intervals.mean.arrays().items():
        np.testing.assert_allclose(arr, mean.arrays()[key])
        lo, hi = intervals.lower.arrays()[key], intervals.upper.arrays()[key]
        assert (lo <= hi).all() and (lo > 0).all()
        assert (hi > lo).mean() > 0.99  # samples differ: the intervals have width
    wide = hybrid.predict_intervals(tiny_lorenz.model_input(), level=0.99)
    assert (wide.upper.eval_rates_heldout >= intervals.upper.eval_rates_heldout).all()
    with pytest.raises(UserError, match="level"):
        hybrid.predict_intervals(tiny_lorenz.model_input(), level=1.5)


def test_interval_coverage_counts_true_rates_inside() -> None:
    ones = np.ones((2, 3, 2))
    truth = GroundTruth(
        train_rates_heldin=ones,
        train_rates_heldout=ones,
        eval_rates_heldin=ones,  # 12 values equal to 1: inside [0.5, 1.5]
        eval_rates_heldout=np.array([0.4, 1.0, 2.0, 1.5]).reshape(1, 2, 2),  # 2 of 4 inside
    )
    lower = Rates(None, None, 0.5 * ones, np.full((1, 2, 2), 0.5))
    upper = Rates(None, None, 1.5 * ones, np.full((1, 2, 2), 1.5))
    intervals = PredictiveIntervals(mean=lower, lower=lower, upper=upper, level=0.9)
    assert interval_coverage(intervals, truth) == pytest.approx(14 / 16)


def test_oscillator_drift_matches_damped_oscillation() -> None:
    """Uncoupled oscillator integrated with Heun: x(t) = exp(-g t / 2) cos(w' t)."""
    step_s = 0.001
    drift = OscillatorDrift(1, step_s=step_s, omega_hz=(2.0, 2.0))
    with torch.no_grad():
        drift.raw_gamma.fill_(math.log(math.expm1(0.8)))  # gamma = 0.8 / s
    omega, gamma = 2 * math.pi * 2.0, 0.8
    z = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    drift = drift.double()
    xs = []
    with torch.no_grad():
        for _ in range(1000):  # 1 s
            k1 = drift(z)
            k2 = drift(z + k1)
            z = z + 0.5 * (k1 + k2)
            xs.append(float(z[0, 0]))
    t = np.arange(1, 1001) * step_s
    wd = math.sqrt(omega**2 - gamma**2 / 4)
    exact = np.exp(-gamma * t / 2) * (np.cos(wd * t) + gamma / (2 * wd) * np.sin(wd * t))
    np.testing.assert_allclose(xs, exact, atol=5e-4)  # float32 omega


def test_path_kl_of_constant_correction_matches_girsanov() -> None:
    """Posterior = prior + c over the observed bins: KL = 0.5 sum (c / sigma)^2 per step."""
    cfg = LatentSDEConfig(n_oscillators=2, encoder_hidden=4, context_dim=3, method="euler")
    module = LatentSDEModule(cfg, n_heldin=5, n_neurons=7, step_s=0.01)
    c = torch.tensor([0.1, -0.2, 0.05, 0.3])
    with torch.no_grad():
        module.posterior_net[-1].weight.zero_()
        module.posterior_net[-1].bias.copy_(c)
        module.log_sigma.copy_(torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])))
    module.eval()
    heldin = torch.rand(3, 6, 5)  # 6 observed bins, 2 steps each, then 4 forward bins
    gen = torch.Generator().manual_seed(0)
    zs, kl0, kl_path = module.run(heldin, 10, 2, entropy=1, generator=gen)
    assert zs.shape == (10, 3, 4)
    per_step = 0.5 * float(((c / module.log_sigma.detach().exp()) ** 2).sum())
    np.testing.assert_allclose(kl_path.detach().numpy(), per_step * 12, rtol=1e-5)
    assert (kl0 >= 0).all()


def test_behavior_head_trains(tiny_lorenz: PhaseData) -> None:
    data = dataclasses.replace(
        tiny_lorenz.model_input(), train_behavior=tiny_lorenz.truth.train_latents
    )
    model = fit(data, behavior_weight=1.0, epochs=3)
    assert model.module.behavior is not None and model.module.behavior.out_features == 3
    check_rates(model.predict(data), tiny_lorenz)


def test_bad_config_is_a_user_error(tiny_lorenz: PhaseData) -> None:
    with pytest.raises(UserError, match="drift 'lstm'"):
        fit(tiny_lorenz, drift="lstm")
    with pytest.raises(UserError, match="method"):
        fit(tiny_lorenz, method="srk")
    for key, value in [("omega_hz", 3), ("omega_hz", (4.0, 1.0)), ("epochs", 0), ("lr", -1.0)]:
        with pytest.raises(UserError, match=f"config {key}="):
            fit(tiny_lorenz, **{key: value})


def test_real_mc_maze_small_smoke(mc_maze_small_val) -> None:
    data = phase_data_from_h5(mc_maze_small_val)
    model = fit(data, epochs=2)
    check_rates(model.predict(data.model_input()), data)


def test_solver_grid_keeps_times_exact(tiny_lorenz: PhaseData) -> None:
    assert [steps_per_bin(20, dt) for dt in (20, 10, 7, 5)] == [1, 2, 3, 4]
    assert [steps_per_bin(5, dt) for dt in (10, 15, 20, 40)] == [0.5, 0.25, 0.25, 0.125]
    # A step spanning two 20 ms bins: states at the bins in between are interpolated.
    model = fit(tiny_lorenz, dt_ms=40, epochs=2)
    assert model._spb == 0.5
    check_rates(model.predict(tiny_lorenz.model_input()), tiny_lorenz)


def test_presets_make_valid_configs() -> None:
    for preset in LatentSDE.presets:
        cfg = LatentSDE.make_config(preset)
        assert isinstance(cfg, LatentSDEConfig) and cfg.drift in DRIFTS
    paper = LatentSDE.make_config("paper")
    assert paper.dt_ms is None and 2 * paper.n_oscillators == 10
    assert (paper.oscillator, paper.predict_with, paper.z0_prior) == (
        "stuart_landau", "prior", "standard"
    )


def test_predictive_interval_covers_a_new_draw_at_its_level() -> None:
    rng = np.random.default_rng(0)
    samples = rng.gamma(2.0, size=(20, 40000))  # 40000 sets of 20 draws
    new = rng.gamma(2.0, size=40000)
    lower, upper = predictive_interval(samples, 0.9, axis=0)
    coverage = float(((new >= lower) & (new <= upper)).mean())
    assert abs(coverage - 0.9) < 0.01  # linear interpolation would give ~0.81
    lin = np.quantile(samples, [0.05, 0.95], axis=0)
    assert abs(float(((new >= lin[0]) & (new <= lin[1])).mean()) - 0.81) < 0.015


# ----------------------------------------------------------------------------------------
# Stuart-Landau oscillators, the frequency bound, prior / posterior prediction, latents
# ----------------------------------------------------------------------------------------


def _heun(drift: OscillatorDrift, z: torch.Tensor, steps: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for _ in range(steps):
            k1 = drift(z)
            k2 = drift(z + k1)
            z = z + 0.5 * (k1 + k2)
            out.append(z[0].numpy().copy())
    return np.array(out)


def test_stuart_landau_drift_matches_the_closed_form() -> None:
    """Uncoupled: r' = a r - r^3, theta' = omega, so r(t) = sqrt(a / (1 + (a / r0^2 - 1)
    exp(-2 a t))) and the phase turns at omega."""
    step_s, a, r0 = 0.001, 2.0, 0.3
    drift = OscillatorDrift(1, step_s, (1.5, 1.5), kind="stuart_landau").double()
    with torch.no_grad():
        drift.growth.fill_(a)
    omega = float(drift.omega().detach())
    assert omega == pytest.approx(2 * math.pi * 1.5, rel=1e-6)
    path = _heun(drift, torch.tensor([[r0, 0.0]], dtype=torch.float64), 2000)
    t = np.arange(1, 2001) * step_s
    r = np.sqrt(a / (1 + (a / r0**2 - 1) * np.exp(-2 * a * t)))
    np.testing.assert_allclose(np.hypot(path[:, 0], path[:, 1]), r, atol=1e-4)
    np.testing.assert_allclose(path[:, 0], r * np.cos(omega * t), atol=1e-3)  # Heun phase error
    assert sum(p.numel() for p in drift.parameters()) == 1 + 1 + 1  # omega, a, K


@pytest.mark.parametrize("hz", [8.0, 12.0])
def test_frequency_bound_keeps_heun_stable_at_20_ms(hz: float) -> None:
    """The issue's blow-up: Heun at 20 ms steps, a damped oscillator at 8 / 12 Hz, 1 s."""
    z0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    unbounded = OscillatorDrift(1, 0.02, (hz, hz), max_omega_dt=100.0).double()
    assert float(unbounded.omega().detach()) == pytest.approx(2 * math.pi * hz, rel=1e-4)
    assert np.abs(_heun(unbounded, z0, 50)[:, 0]).max() > 50  # the instability
    bounded = OscillatorDrift(1, 0.02, (hz, hz)).double()
    assert float(bounded.omega().detach()) * 0.02 <= 0.5
    assert np.abs(_heun(bounded, z0, 50)[:, 0]).max() <= 1.0 + 1e-9


def test_prior_and_posterior_prediction(hybrid: LatentSDE, tiny_lorenz: PhaseData) -> None:
    import copy

    data = tiny_lorenz.model_input()
    model = copy.deepcopy(hybrid)
    post = model.predict(data)
    model.config = dataclasses.replace(model.cfg, predict_with="prior")
    prior = model.predict(data)
    assert not np.allclose(prior.eval_rates_heldout, post.eval_rates_heldout)
    # Prior rollouts ignore the posterior correction: zeroing it changes nothing for them,
    # and makes the posterior paths equal to them.
    with torch.no_grad():
        for p in model.module.posterior_net.parameters():
            p.zero_()
    np.testing.assert_array_equal(model.predict(data).eval_rates_heldout, prior.eval_rates_heldout)
    model.config = dataclasses.replace(model.cfg, predict_with="posterior")
    np.testing.assert_allclose(model.predict(data).eval_rates_heldout, prior.eval_rates_heldout)


def test_latents_and_the_standard_initial_prior(tiny_lorenz: PhaseData) -> None:
    model = fit(tiny_lorenz, oscillator="stuart_landau", z0_prior="standard", epochs=2)
    assert float(model.module.prior_z0_mean.abs().max()) == 0.0  # N(0, I), never trained
    assert float(model.module.prior_z0_logvar.abs().max()) == 0.0
    data = tiny_lorenz.model_input()
    lat = model.latents(data.eval_spikes_heldin)
    assert lat.shape == (*data.eval_spikes_heldin.shape[:2], 2 * model.cfg.n_oscillators)
    assert np.isfinite(lat).all() and lat.std() > 0
    np.testing.assert_array_equal(model.latents(data.eval_spikes_heldin), lat)  # seeded


def test_state_dependent_diffusion_and_mlp_readout(tiny_lorenz: PhaseData) -> None:
    model = fit(tiny_lorenz, diffusion="state", readout_hidden=8, epochs=3)
    m = model.module
    assert isinstance(m.readout, torch.nn.Sequential)
    y = torch.tensor([[0.0] * m.state_dim, [3.0] * m.state_dim])
    with torch.no_grad():
        g = m.g(torch.tensor(0.0), y)
        expected = 2 * m.log_sigma.exp() * torch.sigmoid(m.diffusion_w * y + m.diffusion_b)
    torch.testing.assert_close(g, expected)
    assert not torch.allclose(g[0], g[1])  # depends on the state
    check_rates(model.predict(tiny_lorenz.model_input()), tiny_lorenz)
