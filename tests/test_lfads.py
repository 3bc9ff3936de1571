"""LFADS adapter: smoke training on tiny Lorenz, determinism, posterior sampling, and the
model's densities and penalties."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.lfads import LFADS, SEARCH_SPACE, LFADSConfig, ramp  # noqa: E402
from baselines.lfads.network import (  # noqa: E402
    LFADSNet,
    NormalizedLinear,
    ar1_log_prob,
    gaussian_kl,
    sample_rates,
)
from nlbsuite.data import PhaseData  # noqa: E402
from nlbsuite.errors import UserError  # noqa: E402
from nlbsuite.testing import check_adapter  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smoke_model(tiny_lorenz: PhaseData) -> LFADS:
    """The smoke model fitted by the conformance check (shapes, determinism, other seed,
    pickle, ...)."""
    return check_adapter(LFADS, tiny_lorenz).model


def test_smoke_fit_learns_and_predicts(smoke_model: LFADS, tiny_lorenz: PhaseData) -> None:
    loss = smoke_model.history.train["loss"]
    assert np.mean(loss[-3:]) < np.mean(loss[:3])
    assert smoke_model.extras["epochs_run"] == LFADS.presets["smoke"]["epochs"]
    rates = smoke_model.predict(tiny_lorenz.model_input())
    rates.check(tiny_lorenz)
    assert all((a > 0).all() for a in rates.arrays().values())
    ratio = rates.train_rates_heldout.mean() / tiny_lorenz.train_spikes_heldout.mean()
    assert 0.5 < ratio < 2.0


def test_posterior_samples_average_towards_more_samples(
    smoke_model: LFADS, tiny_lorenz: PhaseData
) -> None:
    spikes = tiny_lorenz.eval_spikes_heldin
    one = sample_rates(smoke_model, spikes, 1, seed=0)
    many = sample_rates(smoke_model, spikes, 64, seed=0)
    more = sample_rates(smoke_model, spikes, 64, seed=1)
    means = sample_rates(smoke_model, spikes, 0, seed=0)
    assert not np.allclose(one, many)
    # Two 64-sample averages agree much better than single samples do.
    assert np.abs(many - more).mean() < 0.5 * np.abs(one - many).mean()
    assert means.shape == many.shape == (8, 25, 30)


def test_gaussian_kl_matches_torch_distributions() -> None:
    from torch.distributions import Normal, kl_divergence

    mean, std = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, 2.0]])
    pm, ps = torch.tensor([0.1, 0.0]), torch.tensor([0.3, 1.5])
    ref = kl_divergence(Normal(mean, std), Normal(pm, ps)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, std, pm, ps), ref)


def test_ar1_log_prob_is_the_gaussian_of_its_covariance() -> None:
    """The AR(1) prior equals a zero-mean Gaussian with covariance nvar a^|i-j| / (1-a^2)."""
    tau, nvar, n = 4.0, 0.3, 6
    x = torch.randn(3, n, 1, dtype=torch.float64)
    got = ar1_log_prob(
        x, torch.tensor([math.log(tau)], dtype=torch.float64),
        torch.tensor([math.log(nvar)], dtype=torch.float64),
    )  # fmt: skip
    a = math.exp(-1.0 / tau)
    lags = torch.arange(n, dtype=torch.float64)
    cov = nvar * a ** (lags[:, None] - lags[None, :]).abs() / (1 - a**2)
    ref = torch.distributions.MultivariateNormal(torch.zeros(n, dtype=torch.float64), cov)
    torch.testing.assert_close(got, ref.log_prob(x[..., 0]))


def test_factor_weights_have_unit_rows() -> None:
    lin = NormalizedLinear(5, 3, bias=False)
    with torch.no_grad():
        lin.weight.mul_(7.0)
    out = lin(torch.eye(5))  # column j of the normalised weight
    torch.testing.assert_close(out.T.norm(dim=1), torch.ones(3))


def test_network_shapes_kls_and_controller_lag() -> None:
    torch.manual_seed(0)
    cfg = LFADSConfig(ic_enc_dim=6, ci_enc_dim=5, con_dim=7, co_dim=2, ic_dim=4, gen_dim=8,
                      fac_dim=3, dropout=0.0)  # fmt: skip
    net = LFADSNet(n_in=5, n_out=9, n_obs=10, n_bins=13, cfg=cfg)
    x = torch.poisson(torch.full((4, 10, 5), 0.5))
    log_rates, ic_kl, co_kl = net(x, sample=True, generator=torch.Generator().manual_seed(0))
    assert log_rates.shape == (4, 13, 9) and ic_kl.shape == co_kl.shape == (4,)
    assert (ic_kl > 0).all()
    means, ic0, co0 = net(x, sample=False)
    assert (ic0 == 0).all() and (co0 == 0).all()
    torch.testing.assert_close(means, net(x, sample=False)[0])  # no sampling: deterministic
    no_con = LFADSNet(5, 9, 10, 13, LFADSConfig(**{**cfg.to_dict(), "co_dim": 0}))
    assert no_con(x, sample=True)[2].abs().sum() == 0


def test_l2_penalty_and_ramps() -> None:
    cfg = LFADSConfig(ic_enc_dim=4, ci_enc_dim=4, con_dim=4, co_dim=1, ic_dim=4, gen_dim=4,
                      fac_dim=2, l2_gen_scale=2.0, l2_con_scale=0.0)  # fmt: skip
    net = LFADSNet(3, 3, 5, 5, cfg)
    expected = 0.5 * 2.0 * net.gen_cell.weight_hh.pow(2).mean()
    torch.testing.assert_close(net.l2_penalty(), expected)
    assert [ramp(e, 10, 20) for e in (0, 10, 20, 30, 99)] == [0, 0, 0.5, 1, 1]
    assert ramp(5, 0, 0) == 1.0


def test_presets_and_search_space(tiny_lorenz: PhaseData) -> None:
    paper = LFADS.make_config("paper")
    assert (paper.ic_enc_dim, paper.ci_enc_dim, paper.con_dim, paper.co_dim) == (100, 80, 80, 4)
    assert (paper.ic_dim, paper.gen_dim, paper.fac_dim, paper.n_samples) == (100, 100, 40, 50)
    rsg = LFADS(paper)._resolved_config(PhaseData(**{**vars(tiny_lorenz), "dataset": "dmfc_rsg"}))
    assert (rsg.ci_enc_dim, rsg.con_dim) == (64, 64)
    for name, (low, high, _) in SEARCH_SPACE.items():
        assert low < high and hasattr(paper, name)
        assert low <= getattr(paper, name) <= high, name
    with pytest.raises(UserError, match=r"cd_rate=1\.0"):
        LFADS(LFADSConfig(cd_rate=1.0)).fit(tiny_lorenz.model_input())
