"""LangevinFlow adapter: the conformance check (shapes, determinism, pickling:
check_adapter), smoke training on tiny Lorenz, and the model's equations."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.langevin_flow import (  # noqa: E402
    CoupledOscillatorPotential,
    LangevinFlow,
    LangevinFlowConfig,
    gaussian_kl,
    gaussian_kl_std_normal,
    langevin_step,
)
from nlbsuite.data import PhaseData  # noqa: E402
from nlbsuite.errors import UserError  # noqa: E402
from nlbsuite.testing import check_adapter  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smoke_model(tiny_lorenz: PhaseData) -> LangevinFlow:
    """The smoke preset's model, fitted by the conformance check."""
    model = check_adapter(LangevinFlow, tiny_lorenz).model
    assert isinstance(model, LangevinFlow)
    return model


def test_smoke_training_loss_falls(smoke_model: LangevinFlow) -> None:
    hist = smoke_model.history
    assert len(hist) == LangevinFlow.presets["smoke"]["epochs"]
    assert np.all(np.isfinite(hist))
    assert np.mean(hist[-3:]) < 0.9 * hist[0]
    assert smoke_model.valid_history[smoke_model.best_epoch] == min(smoke_model.valid_history)


def test_predictions_track_the_firing_level(
    smoke_model: LangevinFlow, tiny_lorenz: PhaseData
) -> None:
    rates = smoke_model.predict(tiny_lorenz.model_input())
    # The fitted rates track the data's overall firing level (within a factor of 2).
    assert 0.5 < rates.train_rates_heldin.mean() / tiny_lorenz.train_spikes_heldin.mean() < 2.0


def test_n_parameters_counts_trainable_weights(smoke_model: LangevinFlow) -> None:
    n = sum(p.numel() for p in smoke_model._net.parameters())
    assert smoke_model.n_parameters() == n > 1000


def test_force_is_gradient_of_coupled_oscillator_energy() -> None:
    torch.manual_seed(0)
    pot = CoupledOscillatorPotential(hidden=12, n_channels=4, kernel_size=3).double()
    z = torch.randn(5, 12, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(pot.energy(z).sum(), z)
    closed = z.detach() @ pot.force_matrix()
    torch.testing.assert_close(closed, auto)
    # The energy is sum(conv(z) * z) with L2-normalised kernels: check one site by hand.
    w = torch.nn.functional.normalize(pot.kernel, dim=2).detach()
    zs = z.detach().reshape(5, 4, 3)
    conv_mid = sum(w[0, c] @ zs[:, c, 0:3].T for c in range(4))  # output (c=0, site 1)
    coupled = pot.coupling(z.detach()).reshape(5, 4, 3)[:, 0, 1]
    torch.testing.assert_close(coupled, conv_mid)


def test_force_couples_only_neighbouring_sites() -> None:
    torch.manual_seed(0)
    pot = CoupledOscillatorPotential(hidden=24, n_channels=4, kernel_size=3)
    s = pot.force_matrix().detach()
    torch.testing.assert_close(s, s.T)
    site = torch.arange(24) % 6  # z is (channel, site) = (4, 6) row-major
    far = (site[:, None] - site[None, :]).abs() > 1
    assert torch.all(s[far] == 0) and torch.any(s[~far] != 0)


def test_langevin_step_values() -> None:
    z = torch.tensor([[1.0, -2.0]])
    v = torch.tensor([[0.5, 1.0]])
    grad_u = torch.tensor([[2.0, -4.0]])
    noise = torch.tensor([[1.0, -1.0]])
    z1, v1, mean = langevin_step(z, v, grad_u, noise, gamma=0.5, dt=0.1)
    torch.testing.assert_close(z1, torch.tensor([[1.05, -1.9]]))
    torch.testing.assert_close(mean, torch.tensor([[0.05, 0.9]]))
    torch.testing.assert_close(v1, torch.tensor([[1.05, -0.1]]))


def test_gaussian_kls_match_torch_distributions() -> None:
    from torch.distributions import Normal, kl_divergence

    mean = torch.tensor([[0.3, -1.2, 2.0]])
    logvar = torch.tensor([[0.1, -0.5, 0.7]])
    ref = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl_std_normal(mean, logvar), ref)
    ref2 = kl_divergence(Normal(mean, math.sqrt(1.1)), Normal(0.0, math.sqrt(0.1))).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, 1.1, 0.1), ref2)


def test_paper_preset_uses_per_dataset_settings(tiny_lorenz: PhaseData) -> None:
    cfg = LangevinFlow.make_config("paper")
    assert (cfg.hidden, cfg.gamma, cfg.dt, cfg.lr, cfg.batch_size) == (280, 0.55, 0.01, 3e-3, 256)
    model = LangevinFlow(cfg)
    rsg = model._resolved_config(PhaseData(**{**vars(tiny_lorenz), "dataset": "dmfc_rsg"}))
    assert (rsg.gamma, rsg.lr, rsg.batch_size, rsg.cd_rate, rsg.epochs) == (
        0.7,
        1e-3,
        64,
        0.6,
        1000,
    )
    assert model._resolved_config(tiny_lorenz).gamma == 0.55


def test_bad_hidden_size_is_a_user_error(tiny_lorenz: PhaseData) -> None:
    model = LangevinFlow(LangevinFlowConfig(hidden=18, n_channels=4))
    with pytest.raises(UserError, match="hidden=18"):
        model.fit(tiny_lorenz.model_input())


def test_data_without_forward_window(tiny_lorenz: PhaseData) -> None:
    data = dataclasses.replace(
        tiny_lorenz.model_input(),
        train_spikes_heldin_forward=None,
        train_spikes_heldout_forward=None,
    )
    model = LangevinFlow(LangevinFlow.make_config("smoke", {"epochs": 1}))
    model.fit(data)
    rates = model.predict(data)
    assert rates.eval_rates_heldin_forward is None and rates.eval_rates_heldout_forward is None
    assert rates.eval_rates_heldout.shape == (8, tiny_lorenz.n_bins, tiny_lorenz.n_heldout)


def test_paper_preset_warns_once_off_its_20_ms_bins(tiny_lorenz: PhaseData) -> None:
    import warnings

    model = LangevinFlow(LangevinFlow.make_config("paper"))
    at = {ms: PhaseData(**{**vars(tiny_lorenz), "bin_width_ms": ms}) for ms in (5, 20)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model._resolved_config(at[20])
        assert caught == []
        model._resolved_config(at[5])
    assert len(caught) == 1 and "20 ms" in str(caught[0].message)
    assert "5 ms" in str(caught[0].message)


def test_validation_ignores_held_in_observed_entries(smoke_model: LangevinFlow) -> None:
    from baselines.langevin_flow.network import _valid_nll

    rng = np.random.default_rng(0)
    n_in, n_bins, n_fwd = smoke_model._n_in, smoke_model._n_bins, smoke_model._n_forward
    n_out = smoke_model._net.readout.out_features
    y = torch.as_tensor(rng.poisson(1.0, (6, n_bins + n_fwd, n_out)), dtype=torch.float32)
    x = y[:, :n_bins, :n_in].clone()
    base = _valid_nll(smoke_model, x, y)
    y2 = y.clone()
    y2[:, :n_bins, :n_in] += 5.0  # held-in targets change: the score does not
    assert _valid_nll(smoke_model, x, y2) == base
    y3 = y.clone()
    y3[:, :n_bins, n_in:] += 5.0  # held-out targets change: it does
    assert _valid_nll(smoke_model, x, y3) != base


def test_latents_and_the_latent_motion_probe(
    smoke_model: LangevinFlow, tiny_lorenz: PhaseData
) -> None:
    heldin = tiny_lorenz.eval_spikes_heldin
    lat = smoke_model.latents(heldin)
    assert lat.shape == (*heldin.shape[:2], 2 * smoke_model._cfg.hidden)
    np.testing.assert_array_equal(smoke_model.latents(heldin), lat)
    probe = smoke_model.latent_motion(tiny_lorenz.train_spikes_heldin)
    assert probe["noise_sd_per_step"] == pytest.approx(math.sqrt(2 * 0.55))
    assert all(np.isfinite(v) and v >= 0 for v in probe.values())
    assert probe["sensitivity_h_over_zv"] > 0
