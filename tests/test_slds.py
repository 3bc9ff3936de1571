"""SLDS baseline: the linear algebra against dense references, recovery of a known SLDS, and
the adapter on tiny Lorenz and (when present) real MC_Maze_Small data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from baselines.slds import (
    NLB_SLDS_PARAMS,
    SLDS,
    Moments,
    SLDSConfig,
    SLDSFit,
    SLDSParams,
    Stats,
    btd_covariances,
    btd_factor,
    btd_sample,
    btd_solve,
    forward_backward,
    m_step_dynamics,
)
from nlbsuite.scoring import evaluate
from nlbsuite.testing import check_adapter


def _random_btd(rng: np.random.Generator, n_batch: int, n_time: int, dim: int):
    """A random block-tridiagonal SPD matrix: blocks and the dense (batch, TD, TD) form."""
    lower = 0.4 * rng.normal(size=(n_batch, n_time - 1, dim, dim))
    diag = np.zeros((n_batch, n_time, dim, dim))
    for t in range(n_time):
        m = rng.normal(size=(n_batch, dim, dim))
        diag[:, t] = m @ m.transpose(0, 2, 1) + 3 * dim * np.eye(dim)
    dense = np.zeros((n_batch, n_time * dim, n_time * dim))
    for t in range(n_time):
        dense[:, t * dim : (t + 1) * dim, t * dim : (t + 1) * dim] = diag[:, t]
    for t in range(n_time - 1):
        block = slice((t + 1) * dim, (t + 2) * dim), slice(t * dim, (t + 1) * dim)
        dense[:, block[0], block[1]] = lower[:, t]
        dense[:, block[1], block[0]] = lower[:, t].transpose(0, 2, 1)
    return diag, lower, dense


def test_block_tridiagonal_solve_and_covariances_equal_dense_inverse():
    rng = np.random.default_rng(0)
    n_batch, n_time, dim = 3, 6, 4
    diag, lower, dense = _random_btd(rng, n_batch, n_time, dim)
    rhs = rng.normal(size=(n_batch, n_time, dim))
    inv = btd_factor(diag, lower)
    x = btd_solve(inv, lower, rhs)
    expected = np.linalg.solve(dense, rhs.reshape(n_batch, -1, 1))[..., 0]
    np.testing.assert_allclose(x.reshape(n_batch, -1), expected, rtol=1e-10, atol=1e-12)
    cov, cross = btd_covariances(inv, lower)
    full = np.linalg.inv(dense)
    for t in range(n_time):
        blk = full[:, t * dim : (t + 1) * dim, t * dim : (t + 1) * dim]
        np.testing.assert_allclose(cov[:, t], blk, rtol=1e-10, atol=1e-12)
    for t in range(n_time - 1):
        blk = full[:, (t + 1) * dim : (t + 2) * dim, t * dim : (t + 1) * dim]
        np.testing.assert_allclose(cross[:, t], blk, rtol=1e-10, atol=1e-12)


def test_block_tridiagonal_draws_have_the_inverse_as_covariance():
    rng = np.random.default_rng(2)
    diag, lower, dense = _random_btd(rng, 1, 4, 2)
    n = 20000
    inv = btd_factor(np.repeat(diag, n, 0), np.repeat(lower, n, 0))
    draws = btd_sample(inv, np.repeat(lower, n, 0), rng).reshape(n, -1)
    np.testing.assert_allclose(np.cov(draws.T), np.linalg.inv(dense[0]), atol=0.004)
    assert np.abs(draws.mean(axis=0)).max() < 0.01


def test_forward_backward_equals_enumeration():
    rng = np.random.default_rng(1)
    k, n_time = 3, 5
    pi = rng.dirichlet(np.ones(k))
    trans = rng.dirichlet(np.ones(k), size=k)
    log_like = rng.normal(size=(2, n_time, k)) * 3
    post, counts, log_norm = forward_backward(np.log(pi), trans, log_like)
    for b in range(2):
        joint = {}
        for path in itertools.product(range(k), repeat=n_time):
            lp = np.log(pi[path[0]]) + sum(log_like[b, t, s] for t, s in enumerate(path))
            lp += sum(np.log(trans[path[t], path[t + 1]]) for t in range(n_time - 1))
            joint[path] = lp
        logz = np.logaddexp.reduce(list(joint.values()))
        assert log_norm[b] == pytest.approx(logz, rel=1e-10)
        marg = np.zeros((n_time, k))
        for path, lp in joint.items():
            marg[np.arange(n_time), path] += np.exp(lp - logz)
        np.testing.assert_allclose(post[b], marg, atol=1e-12)
    # expected transition counts sum to (T - 1) per sequence
    assert counts.sum() == pytest.approx(2 * (n_time - 1))


def _simulate_slds(rng: np.random.Generator, n_trials: int, n_time: int, n_neurons: int):
    """Two rotations at different speeds (0.25 and -0.08 rad/bin, decay 0.99) switching with
    probability 0.03 per bin, observed through 40 Poisson softplus neurons."""

    def rot(theta: float, r: float) -> np.ndarray:
        return r * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    a = np.stack([rot(0.25, 0.99), rot(-0.08, 0.99)])
    trans = np.array([[0.97, 0.03], [0.03, 0.97]])
    c = rng.normal(size=(n_neurons, 2)) * 0.8
    d = np.full(n_neurons, 0.0)
    z = np.zeros((n_trials, n_time), dtype=int)
    x = np.zeros((n_trials, n_time, 2))
    z[:, 0] = rng.integers(0, 2, n_trials)
    x[:, 0] = rng.normal(size=(n_trials, 2)) * 2
    for t in range(1, n_time):
        stay = rng.random(n_trials) < trans[z[:, t - 1], z[:, t - 1]]
        z[:, t] = np.where(stay, z[:, t - 1], 1 - z[:, t - 1])
        x[:, t] = (a[z[:, t]] @ x[:, t - 1, :, None])[..., 0]
        x[:, t] += 0.05 * rng.normal(size=(n_trials, 2))
    y = rng.poisson(np.logaddexp(0, x @ c.T + d)).astype(float)
    return y, z, a


def test_recovers_switches_and_dynamics_of_a_known_slds():
    y, z, a_true = _simulate_slds(np.random.default_rng(0), 60, 100, 40)
    cfg = SLDSConfig(n_iters=30, n_init_iters=15, emission_iters=20)
    fit = SLDSFit(2, 2, 1e-4, 1e-8, cfg, seed=0)
    fit.fit(y)
    p = fit.params
    # discrete states: posterior argmax against the truth, best of the two labellings
    q = fit.last_q.argmax(axis=2)
    acc = max((q == z).mean(), (q == 1 - z).mean())
    assert acc > 0.9

    # dynamics: eigenvalues are invariant to the latent basis; match states by rotation speed
    def angles(a: np.ndarray) -> np.ndarray:
        return np.array([np.abs(np.angle(np.linalg.eigvals(m))).max() for m in a])

    est, true = np.sort(angles(p.A)), np.sort(angles(a_true))
    np.testing.assert_allclose(est, true, atol=0.05)
    radii = np.abs(np.linalg.eigvals(p.A))
    np.testing.assert_allclose(radii, 0.99, atol=0.03)
    # the log-likelihood at the means rises over Laplace-EM
    assert fit.log_likelihoods[-1] > fit.log_likelihoods[0]


def test_l2_penalty_pulls_dynamics_towards_the_identity_as_ssm():
    """ssm's prior on [A, b] has mean [I, 0]: a heavy l2_penalty_A gives random-walk dynamics
    (regression test: a penalty towards 0 shrank A to 0 and the posterior lost all smoothing,
    co-bps -0.42 on MC_Maze_Small at 20 ms)."""
    rng = np.random.default_rng(0)
    k, dim = 2, 3
    x = rng.normal(size=(4, 50, dim)) * 0.1
    stats = Stats.zeros(k, dim)
    q = np.full((4, 50, k), 0.5)
    stats.add(q, np.zeros((k, k)) + 1.0, Moments.point(x))
    p = SLDSParams(
        np.full(k, 0.5),
        np.full((k, k), 0.5),
        np.zeros((k, dim, dim)),
        np.zeros((k, dim)),
        np.tile(np.eye(dim), (k, 1, 1)),
        np.zeros(dim),
        np.eye(dim),
        np.ones((5, dim)),
        np.zeros(5),
    )
    heavy = m_step_dynamics(p, stats, 1e6, 1e-8)
    np.testing.assert_allclose(heavy.A, np.tile(np.eye(dim), (k, 1, 1)), atol=1e-4)
    free = m_step_dynamics(p, stats, 1e-8, 1e-8)  # white noise: least squares A near 0
    assert np.abs(free.A).max() < 0.3


def test_nlb_parameters():
    assert NLB_SLDS_PARAMS["mc_maze"][:3] == (6, 38, 30000.0)
    assert NLB_SLDS_PARAMS["mc_maze_small"][:2] == (5, 15)
    assert SLDS.make_config("paper").n_iters == 50


def test_smoke_on_lorenz_passes_the_conformance_check_and_beats_the_null(tiny_lorenz):
    # check_adapter: shapes, positivity, the same rates for a seed, pickling
    result = check_adapter(SLDS, tiny_lorenz, seed=3)
    model, runs, data = result.model, [result.rates], tiny_lorenz.model_input()
    # entries outside the mask (held-out neurons, forward bins) never reach the inference
    y = np.zeros((8, 25, 30))
    y[:, :20, :22] = data.eval_spikes_heldin
    mask = y == y
    mask[:, 20:], mask[:, :, 22:] = False, False
    noisy = np.where(mask, y, 7.0)
    np.testing.assert_array_equal(model.model.infer(y, mask), model.model.infer(noisy, mask))
    scores = evaluate(tiny_lorenz, runs[0])
    assert 0.0 < scores["co-bps"] < scores["ceiling co-bps"]
    assert model.n_parameters() > 0


def test_bad_link_is_a_user_error(tiny_lorenz):
    from nlbsuite.errors import UserError

    model = SLDS(SLDS.make_config("smoke", {"link": "relu"}))
    with pytest.raises(UserError, match="link"):
        model.fit(tiny_lorenz.model_input())


def test_fit_and_predict_run_on_one_blas_thread_whatever_the_caller(tiny_lorenz, monkeypatch):
    """fit/predict pin one BLAS thread: threaded sums differ in the last bits with the thread
    count and EM amplifies that (a 2-thread and a 1-thread run of one seed differed by 5e-4
    co-bps on MC_Maze_Small), so a caller on 2 threads must get the 1-thread numbers."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from baselines.slds import network

    seen = []

    def spy(method):
        def wrapped(*args, **kwargs):
            seen.append(max(p["num_threads"] for p in threadpool_info()))
            return method(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(network.SLDSFit, "fit", spy(network.SLDSFit.fit))
    monkeypatch.setattr(network.SLDSFit, "infer", spy(network.SLDSFit.infer))
    with threadpool_limits(2):
        caller = max(p["num_threads"] for p in threadpool_info())
        model = SLDS(SLDS.make_config("smoke"), seed=0)
        model.fit(tiny_lorenz.model_input())
        model.predict(tiny_lorenz.model_input())
    assert seen == [1, 1], (caller, seen)


def test_emission_m_step_stops_early_as_ssm(monkeypatch):
    """ssm's emission update is L-BFGS with scipy's tol=1e-4: a partial step, not the
    maximiser (regression test: running to the maximiser doubled |C| and cost 0.06 co-bps on
    MC_Maze_Small at 5 ms against ssm's own runs)."""
    from baselines.slds import network

    rng = np.random.default_rng(0)
    n, dim = 20, 3
    x = rng.normal(size=(8, 100, dim))
    c_true, d_true = rng.normal(size=(n, dim)) * 0.5, np.full(n, -1.0)
    y = rng.poisson(np.exp(x @ c_true.T + d_true)).astype(float)
    p = SLDSParams(np.ones(1), np.ones((1, 1)), np.zeros((1, dim, dim)), np.zeros((1, dim)),
                   np.eye(dim)[None], np.zeros(dim), np.eye(dim), np.zeros((n, dim)),
                   np.log(y.mean(axis=(0, 1))))
    runs = []
    minimize = network.optimize.minimize

    def spy(*args, **kwargs):
        res = minimize(*args, **kwargs)
        runs.append((kwargs.get("tol"), res.nit))
        return res

    monkeypatch.setattr(network.optimize, "minimize", spy)
    c_ssm, _ = network.m_step_emissions(p, x, y, "log", maxiter=1000)
    monkeypatch.setattr(network, "SSM_LBFGS_TOL", 1e-12)
    c_max, _ = network.m_step_emissions(p, x, y, "log", maxiter=1000)
    (tol, nit), (_, nit_max) = runs
    assert tol == 1e-4 and nit < nit_max
    assert np.linalg.norm(c_max - c_ssm) > 1e-3 * np.linalg.norm(c_max)
