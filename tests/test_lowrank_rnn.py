"""lowrank_rnn: exact fixed points (vs brute force over all regions), the VSMC pieces, the
adapter contract on tiny Lorenz and ``nlbsuite analyze fixed-points``."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.lowrank_rnn.fixed_points import (
    PiecewiseLinearRNN,
    brute_force_fixed_points,
    find_fixed_points,
)
from nlbsuite.testing import check_adapter


def random_net(seed: int, n_units: int, rank: int, nonlinearity: str) -> PiecewiseLinearRNN:
    """Random networks strong enough to have several fixed points in many draws."""
    rng = np.random.default_rng(seed)
    return PiecewiseLinearRNN(
        a=rng.uniform(0.3, 0.9, size=rank),
        m=rng.normal(size=(n_units, rank)),
        n=rng.normal(size=(n_units, rank)) * 4.0 / np.sqrt(n_units),
        h=rng.normal(size=n_units) * 0.5 + (0.5 if nonlinearity == "clipped_relu" else 0.0),
        nonlinearity=nonlinearity,
    )


def same_points(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, atol=1e-6)


# ----------------------------------------------------------------------------------------
# Fixed points
# ----------------------------------------------------------------------------------------


def test_hand_computed_fixed_points_of_a_bistable_unit():
    # z' = 0.5 z + clip(4 z - 2, 0, 1): off -> z = 0; linear -> z = 4/7; saturated -> z = 2.
    net = PiecewiseLinearRNN(a=[0.5], m=[[4.0]], n=[[1.0]], h=[-2.0])
    for fps in (find_fixed_points(net), find_fixed_points(net, prune=False)):
        np.testing.assert_allclose(fps.z[:, 0], [0.0, 4 / 7, 2.0], atol=1e-12)
        assert [fps.kind(i) for i in range(3)] == ["stable", "unstable", "stable"]
        np.testing.assert_allclose(np.abs(fps.eigenvalues[:, 0]), [0.5, 4.5, 0.5])


@pytest.mark.parametrize("nonlinearity", ["relu", "clipped_relu", "relu_diff"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_region_enumeration_equals_brute_force_over_all_regions(nonlinearity, rank):
    n_units = 9 if nonlinearity == "relu" else 6  # 2^9 = 512 and 3^6 = 729 regions
    counts = []
    for seed in range(6):
        net = random_net(seed, n_units, rank, nonlinearity)
        truth = brute_force_fixed_points(net)
        counts.append(len(truth))
        for fps in (
            find_fixed_points(net, prune=False),
            find_fixed_points(net, prune=True, leaf_planes=5),
        ):
            assert same_points(fps.z, truth.z), (seed, fps.z, truth.z)
            np.testing.assert_array_equal(fps.stable, truth.stable)
            np.testing.assert_array_equal(fps.states, truth.states)
    assert max(counts) >= 2  # the comparison is not only about empty or single answers


@pytest.mark.parametrize(("n_units", "rank"), [(2, 3), (1, 2), (5, 4)])
def test_rank_deficient_and_higher_rank_networks(n_units, rank):
    for seed in range(4):
        for nl in ("relu", "clipped_relu", "relu_diff"):
            net = random_net(seed, n_units, rank, nl)
            assert same_points(
                find_fixed_points(net, prune=False).z, brute_force_fixed_points(net).z
            )


@pytest.mark.parametrize("nonlinearity", ["relu", "clipped_relu", "relu_diff"])
def test_pruning_finds_what_full_enumeration_finds_on_a_larger_network(nonlinearity):
    # 60 units: too many regions for brute force; the paper's initialisation scale.
    rng = np.random.default_rng(0)
    net = PiecewiseLinearRNN(
        a=0.9,
        m=rng.uniform(-0.58, 0.58, size=(60, 3)),
        n=rng.uniform(-0.13, 0.13, size=(60, 3)),
        h=rng.uniform(-0.13, 0.13, size=60),
        nonlinearity=nonlinearity,
    )
    full = find_fixed_points(net, prune=False)
    assert full.n_regions > 10_000
    assert same_points(find_fixed_points(net).z, full.z)
    np.testing.assert_allclose(net.step(full.z), full.z, atol=1e-9)


def test_relu_diff_is_the_authors_unit_and_its_clipped_form_is_the_same_map():
    # relu(x + h) - relu(x): 0 below -h, x + h between, h above (h > 0); mirrored for h < 0.
    net = PiecewiseLinearRNN(a=[0.5], m=[[1.0], [1.0]], n=[[1.0], [1.0]], h=[0.5, -0.5],
                             nonlinearity="relu_diff")  # fmt: skip
    x = np.array([[-1.0, -1.0], [-0.25, -0.25], [0.25, 0.25], [1.0, 1.0]])
    np.testing.assert_allclose(net.phi(x), [[0, 0], [0.25, 0], [0.5, -0.25], [0.5, -0.5]])
    np.testing.assert_array_equal(net.unit_states(x[:, :1]), [[0, 0], [1, 0], [2, 1], [2, 2]])
    rng = np.random.default_rng(0)
    for seed in range(5):
        big = random_net(seed, 30, 3, "relu_diff")
        z = rng.normal(size=(200, 3)) * 3
        np.testing.assert_allclose(big.as_clipped().step(z), big.step(z), atol=1e-12)
        np.testing.assert_array_equal(big.as_clipped().unit_states(z), big.unit_states(z))


@pytest.mark.parametrize("nonlinearity", ["clipped_relu", "relu_diff"])
def test_fixed_points_are_fixed_and_stability_matches_simulation(nonlinearity):
    net = random_net(3, 40, 2, nonlinearity)
    fps = find_fixed_points(net)
    assert len(fps) >= 1
    np.testing.assert_allclose(net.step(fps.z), fps.z, atol=1e-9)
    rng = np.random.default_rng(0)
    for i in range(len(fps)):
        # Numerical Jacobian equals the region's map.
        eps = 1e-7
        num = np.stack(
            [
                (net.step(fps.z[i] + eps * e) - net.step(fps.z[i] - eps * e)) / (2 * eps)
                for e in np.eye(2)
            ],
            axis=1,
        )
        np.testing.assert_allclose(num, net.jacobian(fps.z[i]), atol=1e-6)
        z = fps.z[i] + 1e-6 * rng.normal(size=2)
        for _ in range(3000):
            z = net.step(z)
        assert np.allclose(z, fps.z[i], atol=1e-5) == bool(fps.stable[i])


# ----------------------------------------------------------------------------------------
# VSMC pieces
# ----------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


def test_systematic_resampling_counts_are_floor_or_ceil_of_k_times_weight():
    from baselines.lowrank_rnn.network import systematic_resample

    gen = torch.Generator().manual_seed(0)
    w = torch.tensor([[0.05, 0.5, 0.2, 0.25], [0.0, 0.0, 1.0, 0.0]]).repeat(50, 1)
    idx = systematic_resample(torch.log(w), gen)  # (100, 4)
    counts = torch.stack([(idx == i).sum(1) for i in range(4)], dim=1).double()
    expected = 4 * w.double()
    assert torch.all(counts >= torch.floor(expected)) and torch.all(counts <= torch.ceil(expected))
    assert torch.all(idx[1::2] == 2)


def test_vsmc_bound_tightens_with_more_particles():
    from baselines.lowrank_rnn import LowRankRNN, LowRankSSM, run_smc

    cfg = LowRankRNN.make_config("smoke")
    rng = np.random.default_rng(0)
    spikes = torch.as_tensor(rng.poisson(1.0, size=(8, 15, 6)), dtype=torch.float32)
    torch.manual_seed(0)
    model = LowRankSSM(cfg, 4, 6, np.ones(6))
    gen = torch.Generator().manual_seed(1)
    mask = torch.ones_like(spikes)
    with torch.no_grad():
        bound = {
            k: np.mean(
                [
                    float(run_smc(model, spikes[:, :, :4], spikes, mask, k, gen).bound.mean())
                    for _ in range(20)
                ]
            )
            for k in (1, 64)
        }
    assert bound[64] > bound[1] + 1.0


def textbook_smc(model, enc, obs, mask, k, gen, proposal):
    """The VSMC bound (trial,) written as the paper states it, with torch.distributions'
    densities: log w = log p(x|z) + log N(z; prior) - log N(z; q), resampled every step;
    the same random draws in the same order as the package's particle filter."""
    import torch
    from torch.distributions import Normal, Poisson

    from baselines.lowrank_rnn.network import systematic_resample

    n_trials, n_time, _ = obs.shape
    r = model.m.shape[1]
    sd, sd0 = torch.exp(0.5 * model.log_var), torch.exp(0.5 * model.z0_log_var)
    n_enc = enc.shape[1] if proposal == "encoder" else 0
    if n_enc:
        enc_mean, enc_log_var = model.encoder(enc)
    bound, z, log_w = torch.zeros(n_trials), None, None
    for t in range(n_time):
        if t == 0:
            mean, s = model.z0_mean.expand(n_trials, k, r), sd0
        else:
            idx = systematic_resample(log_w, gen)
            z = torch.gather(z, 1, idx[:, :, None].expand(-1, -1, r))
            mean, s = model.transition(z), sd
        eps = torch.randn(n_trials, k, r, generator=gen)
        if t < n_enc:
            e_var = torch.exp(enc_log_var[:, t, None])
            q_var = 1.0 / (1.0 / s**2 + 1.0 / e_var)
            q_mean = q_var * (mean / s**2 + enc_mean[:, t, None] / e_var)
            z = q_mean + q_var.sqrt() * eps
            log_w = Normal(mean, s).log_prob(z).sum(-1) - Normal(q_mean, q_var.sqrt()).log_prob(
                z
            ).sum(-1)
        else:
            z = mean + s * eps
            log_w = torch.zeros(n_trials, k)
        counts = Poisson(model.rates(z)).log_prob(obs[:, t, None].expand(-1, k, -1))
        log_w = log_w + (counts * mask[:, t, None]).sum(-1)
        bound = bound + torch.logsumexp(log_w, 1) - np.log(k)
    return bound


@pytest.mark.parametrize("nonlinearity", ["clipped_relu", "relu", "relu_diff"])
@pytest.mark.parametrize("link", ["exp", "softplus"])
@pytest.mark.parametrize("proposal", ["encoder", "bootstrap"])
def test_particle_filter_bound_and_gradients_equal_the_textbook_form(nonlinearity, link, proposal):
    """The lean filter (precomputed proposal variances, eps-based weights) computes the
    same bound and the same gradients as the densities written out, observed entries
    masked and a forward window without encoder."""
    import torch

    from baselines.lowrank_rnn import LowRankRNN, LowRankSSM, run_smc

    cfg = LowRankRNN.make_config("smoke", {"nonlinearity": nonlinearity, "link": link, "rank": 3})
    rng = np.random.default_rng(1)
    obs = torch.as_tensor(rng.poisson(1.5, size=(6, 12, 5)), dtype=torch.float32)
    mask = torch.ones_like(obs)
    mask[4:, :, 3:] = 0.0  # eval-like trials: held-out neurons unobserved
    mask[:, 9:] = 0.0  # forward window
    torch.manual_seed(2)
    model = LowRankSSM(cfg, 3, 5, np.ones(5))
    enc = obs[:, :9, :3]

    def bound_and_grads(fn):  # the same draws for both: a fresh generator each
        bound = fn(model, enc, obs, mask, 8, torch.Generator().manual_seed(3), proposal)
        grads = torch.autograd.grad(bound.sum(), list(model.parameters()), allow_unused=True)
        return bound.detach(), grads

    lean, lean_g = bound_and_grads(lambda *args: run_smc(*args).bound)
    ref, ref_g = bound_and_grads(textbook_smc)
    assert torch.all(ref < -10.0)  # a real likelihood, not a vacuous zero
    torch.testing.assert_close(lean, ref, rtol=1e-5, atol=1e-4)
    for a, b in zip(lean_g, ref_g, strict=True):
        if b is None:
            assert a is None or not a.any()
            continue
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()) + 1e-6)


# ----------------------------------------------------------------------------------------
# The adapter on tiny Lorenz
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tiny_lorenz):
    """The smoke preset's model and rates, fitted by the conformance check (shapes,
    positivity, determinism for a seed, pickling)."""
    from baselines.lowrank_rnn import LowRankRNN

    result = check_adapter(LowRankRNN, tiny_lorenz)
    return result.model, result.rates


def test_smoke_trains_and_the_bound_rises(fitted):
    model, _ = fitted
    assert len(model.history) >= 4  # per-epoch losses; 12 updates of ~3 batches
    assert model.history[-1] < model.history[0] - 0.1  # loss = -bound per count
    assert model.n_parameters() > 0
    assert [epoch for epoch, _ in model.val_history] == [1, 2, 4]  # 3 evals over 4 epochs


def test_exported_dynamics_equal_the_torch_transition(fitted):
    model, _ = fitted
    net = model.dynamics()
    z = np.random.default_rng(0).normal(size=(10, net.rank))
    with torch.no_grad():
        ref = model.model.transition(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(net.step(z), ref, rtol=1e-5, atol=1e-6)


def test_bad_config_is_one_clear_error(tiny_lorenz):
    from baselines.lowrank_rnn import LowRankRNN
    from nlbsuite.errors import UserError

    model = LowRankRNN(LowRankRNN.make_config("smoke", {"encoder": "sideways"}))
    with pytest.raises(UserError, match="encoder 'sideways'"):
        model.fit(tiny_lorenz.model_input())


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def test_analyze_fixed_points_cli(tmp_path, capsys):
    from nlbsuite.cli import main
    from nlbsuite.results import record_path
    from nlbsuite.runner import run

    results, runs = tmp_path / "results", tmp_path / "runs"
    rec = run("lowrank_rnn", "lorenz_tiny", preset="smoke", results_dir=results, artifacts_dir=runs)
    path = record_path(results, rec)
    out_png = tmp_path / "fp.png"
    assert main(["analyze", "fixed-points", str(path), "--out", str(out_png)]) == 0
    text = capsys.readouterr().out
    assert "fixed point(s) of the rank-2 map" in text and "max |eig|" in text
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["analyze", "fixed-points", str(path), "--json"]) == 0
    import json

    payload = json.loads(capsys.readouterr().out.split("\nplot: ")[0])
    assert payload["run"] == rec.run_id and isinstance(payload["fixed_points"], list)
    assert (runs / f"{rec.run_id}_fixed_points.png").exists()

    smooth = run("smoothing", "lorenz_tiny", results_dir=results, artifacts_dir=runs)
    assert main(["analyze", "fixed-points", str(record_path(results, smooth))]) == 2
    assert "no piecewise-linear latent dynamics" in capsys.readouterr().err
    assert main(["analyze", "fixed-points", str(tmp_path / "missing.json")]) == 2
    assert "result file not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# Authors' unit in torch, generation and the variability check
# ----------------------------------------------------------------------------------------


def test_relu_diff_network_exports_the_same_map_and_the_authors_inits():
    from baselines.lowrank_rnn import LowRankRNN, LowRankSSM

    cfg = LowRankRNN.make_config("smoke", {"nonlinearity": "relu_diff", "enc_init_std": 0.05})
    torch.manual_seed(0)
    ssm = LowRankSSM(cfg, 4, 6, np.ones(6))
    assert float(ssm.h.detach().abs().max()) <= 1 / np.sqrt(cfg.n_units)  # uniform in +-1/sqrt(N)
    with torch.no_grad():
        _, log_var = ssm.encoder(torch.zeros(3, 10, 4))
    # The log-variance starts around log(0.05^2) = -6.0 (plus the conv's small init).
    assert abs(float(log_var.mean()) - 2 * np.log(0.05)) < 1.0
    rnn = LowRankRNN(cfg)
    rnn.model = ssm
    net = rnn.dynamics()
    assert net.nonlinearity == "relu_diff"
    z = np.random.default_rng(0).normal(size=(10, net.rank))
    with torch.no_grad():
        ref = ssm.transition(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(net.step(z), ref, rtol=1e-5, atol=1e-6)


def test_trial_variability_of_known_processes():
    from baselines.lowrank_rnn import compare_variability, trial_variability

    rng = np.random.default_rng(0)
    poisson = rng.poisson(0.2, size=(400, 25, 6))  # Fano 1, no correlations
    fano, corr = trial_variability(poisson)
    np.testing.assert_allclose(fano, 1.0, atol=0.2)
    assert np.abs(corr).max() < 0.2 and corr.shape == (15,)
    gain = rng.gamma(2.0, 0.5, size=(400, 1, 1))  # shared gain: Fano > 1, positive corr
    shared = rng.poisson(0.2 * gain, size=(400, 25, 6))
    fano_s, corr_s = trial_variability(shared)
    assert fano_s.min() > 1.5 and corr_s.min() > 0.2
    summary = compare_variability(shared, poisson)
    assert summary["fano_median_generated"] > 1.5 > summary["fano_median_real"]
    assert summary["corr_median_generated"] > 0.2


def test_generate_samples_the_fitted_model(fitted):
    from baselines.lowrank_rnn import Generated

    model, _ = fitted
    out = model.generate(30)
    assert isinstance(out, Generated)
    n_steps = model.n_bins + model.n_forward
    assert out.spikes.shape == (30, n_steps, model.model.readout.out_features)
    assert out.latents.shape == (30, n_steps, model.cfg.rank)
    assert np.all(out.spikes >= 0) and np.all(out.spikes == np.round(out.spikes))
    np.testing.assert_array_equal(model.generate(30).spikes, out.spikes)  # seeded
    assert not np.array_equal(model.generate(30, seed=5).spikes, out.spikes)
    # Noise-free, zero-variance start: every trial follows the same deterministic path.
    import copy

    model = copy.deepcopy(model)
    with torch.no_grad():
        model.model.log_var.fill_(-40.0)
        model.model.z0_log_var.fill_(-40.0)
    quiet = model.generate(5)
    np.testing.assert_allclose(quiet.latents, quiet.latents[:1].repeat(5, 0), atol=1e-6)
    np.testing.assert_allclose(quiet.latents[0, 1], model.dynamics().step(quiet.latents[0, 0]),
                               atol=1e-5)  # fmt: skip
