"""SLDS fitting: Laplace-EM in numpy with a compiled Poisson kernel (see the package
docstring for the algorithm); imported by :class:`baselines.slds.SLDS` on ``fit``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import optimize
from scipy.special import gammaln
from tqdm import tqdm

from baselines.slds import EMISSION_CHUNK, MIN_RATE, NU0, PSI0, SLDSConfig
from nlbsuite.errors import require

#: ssm's L-BFGS tolerance (``optimizers._generic_minimize``): scipy sets ftol = gtol = 1e-4.
SSM_LBFGS_TOL = 1e-4

# ----------------------------------------------------------------------------------------
# Links: rate f(eta), and the first two derivatives of the Poisson log-likelihood in eta
# ----------------------------------------------------------------------------------------


def _rate(eta: np.ndarray, link: str) -> np.ndarray:
    return np.exp(np.minimum(eta, 50.0)) if link == "log" else np.logaddexp(0.0, eta)


def _inverse_rate(rate: np.ndarray, link: str) -> np.ndarray:
    return np.log(rate) if link == "log" else rate + np.log(-np.expm1(-rate))


@njit(cache=True, nogil=True, error_model="numpy")
def _softplus_terms(y: np.ndarray, eta: np.ndarray, hess: bool) -> tuple:
    """One pass over flat arrays: Poisson log-likelihood (without log y!) under rate
    softplus(eta), its derivative in eta and minus its second derivative (if ``hess``)."""
    ll = np.empty_like(eta)
    grad = np.empty_like(eta)
    neg_hess = np.empty_like(eta) if hess else np.empty(0)
    for i in range(eta.size):
        e = math.exp(-abs(eta[i]))
        rate = max(math.log1p(e) + max(eta[i], 0.0), MIN_RATE)
        sig = (1.0 if eta[i] >= 0 else e) / (1.0 + e)  # f' = sigmoid
        ll[i] = y[i] * math.log(rate) - rate
        grad[i] = y[i] * sig / rate - sig
        if hess:
            dsig = sig * (1.0 - sig)
            neg_hess[i] = dsig - y[i] * (dsig * rate - sig * sig) / (rate * rate)
    return ll, grad, neg_hess


def _poisson_terms(
    y: np.ndarray, eta: np.ndarray, link: str, hess: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-likelihood (without log y!), its first derivative and minus its second in eta,
    each shaped like ``eta`` (the last one empty unless ``hess``)."""
    if link == "log":
        rate = np.exp(np.minimum(eta, 50.0))
        return y * eta - rate, y - rate, rate
    y = np.broadcast_to(y, eta.shape)
    ll, grad, neg_hess = _softplus_terms(
        np.ascontiguousarray(y, dtype=np.float64).ravel(), np.ascontiguousarray(eta).ravel(), hess
    )
    shape = eta.shape
    return ll.reshape(shape), grad.reshape(shape), neg_hess.reshape(shape) if hess else neg_hess


# ----------------------------------------------------------------------------------------
# Block-tridiagonal symmetric positive definite systems, batched over trials
# ----------------------------------------------------------------------------------------


def btd_factor(diag: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Inverses of the Schur complements S_t of a block-tridiagonal SPD matrix.

    ``diag`` (batch, T, D, D) are its diagonal blocks J_tt, ``lower`` (batch, T-1, D, D) its
    blocks J_{t+1,t}. S_0 = J_00, S_{t+1} = J_{t+1,t+1} - J_{t+1,t} S_t^-1 J_{t+1,t}^T.
    """
    inv = np.empty_like(diag)
    inv[:, 0] = np.linalg.inv(diag[:, 0])
    for t in range(diag.shape[1] - 1):
        low = lower[:, t]
        schur = diag[:, t + 1] - low @ inv[:, t] @ low.transpose(0, 2, 1)
        inv[:, t + 1] = np.linalg.inv(0.5 * (schur + schur.transpose(0, 2, 1)))
    return inv


def btd_solve(inv: np.ndarray, lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve J x = rhs (batch, T, D) given :func:`btd_factor`'s output and J's lower blocks."""
    g = rhs.copy()
    for t in range(rhs.shape[1] - 1):
        g[:, t + 1] -= (lower[:, t] @ (inv[:, t] @ g[:, t, :, None]))[..., 0]
    x = np.empty_like(rhs)
    x[:, -1] = (inv[:, -1] @ g[:, -1, :, None])[..., 0]
    for t in range(rhs.shape[1] - 2, -1, -1):
        back = g[:, t] - (lower[:, t].transpose(0, 2, 1) @ x[:, t + 1, :, None])[..., 0]
        x[:, t] = (inv[:, t] @ back[..., None])[..., 0]
    return x


def btd_covariances(inv: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal blocks (batch, T, D, D) and blocks (t+1, t) (batch, T-1, D, D) of J^-1."""
    cov = np.empty_like(inv)
    cross = np.empty_like(lower)
    cov[:, -1] = inv[:, -1]
    for t in range(inv.shape[1] - 2, -1, -1):
        cross[:, t] = -cov[:, t + 1] @ lower[:, t] @ inv[:, t]
        cov[:, t] = inv[:, t] - inv[:, t] @ lower[:, t].transpose(0, 2, 1) @ cross[:, t]
    return cov, cross


def btd_sample(inv: np.ndarray, lower: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A zero-mean draw (batch, T, D) from N(0, J^-1), backwards: x_t | x_{t+1} has precision
    S_t and mean -S_t^-1 J_{t+1,t}^T x_{t+1}."""
    chol = np.linalg.cholesky(inv)
    eps = rng.standard_normal(inv.shape[:3])[..., None]
    dev = np.empty(inv.shape[:3])
    dev[:, -1] = (chol[:, -1] @ eps[:, -1])[..., 0]
    for t in range(inv.shape[1] - 2, -1, -1):
        back = lower[:, t].transpose(0, 2, 1) @ dev[:, t + 1, :, None]
        dev[:, t] = (chol[:, t] @ eps[:, t] - inv[:, t] @ back)[..., 0]
    return dev


def _btd_matvec(diag: np.ndarray, lower: np.ndarray, x: np.ndarray) -> np.ndarray:
    """J x for a block-tridiagonal J (blocks as in :func:`btd_factor`), x (batch, T, D)."""
    out = (diag @ x[..., None])[..., 0]
    out[:, 1:] += (lower @ x[:, :-1, :, None])[..., 0]
    out[:, :-1] += (lower.transpose(0, 1, 3, 2) @ x[:, 1:, :, None])[..., 0]
    return out


# ----------------------------------------------------------------------------------------
# Discrete states: forward-backward
# ----------------------------------------------------------------------------------------


def forward_backward(
    log_pi: np.ndarray, trans: np.ndarray, log_like: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HMM posterior for ``log_like`` (batch, T, K) under initial ``log_pi`` (K,) and
    transition matrix ``trans`` (K, K): marginals (batch, T, K), expected transition counts
    summed over batch and time (K, K), and each sequence's log marginal likelihood (batch,)."""
    n_batch, n_time, _ = log_like.shape
    shift = log_like.max(axis=2, keepdims=True)
    like = np.exp(log_like - shift)
    alpha = np.empty_like(like)
    scale = np.empty((n_batch, n_time))
    a = np.exp(log_pi)[None] * like[:, 0]
    for t in range(n_time):
        if t:
            a = (alpha[:, t - 1] @ trans) * like[:, t]
        scale[:, t] = a.sum(axis=1)
        alpha[:, t] = a / scale[:, t, None]
    beta = np.ones_like(like)
    counts = np.zeros_like(trans)
    for t in range(n_time - 2, -1, -1):
        weighted = like[:, t + 1] * beta[:, t + 1] / scale[:, t + 1, None]
        beta[:, t] = weighted @ trans.T
        counts += trans * (alpha[:, t].T @ weighted)
    post = alpha * beta
    post /= post.sum(axis=2, keepdims=True)
    log_norm = np.log(scale).sum(axis=1) + shift.sum(axis=(1, 2))
    return post, counts, log_norm


# ----------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------


@dataclass
class SLDSParams:
    """Fitted parameters. Shapes: pi (K,), trans (K, K), A (K, D, D), b (K, D), Q (K, D, D),
    mu0 (D,), S0 (D, D), C (N, D), d (N,)."""

    pi: np.ndarray
    trans: np.ndarray
    A: np.ndarray
    b: np.ndarray
    Q: np.ndarray
    mu0: np.ndarray
    S0: np.ndarray
    C: np.ndarray
    d: np.ndarray

    #: The fields ssm's Laplace-EM damps; its dynamics M-step (A, b, Q and the initial
    #: state) is exact, from the posterior's expected sufficient statistics.
    DAMPED = ("pi", "trans", "C", "d")

    def damped(self, new: SLDSParams, alpha: float) -> SLDSParams:
        """``new`` with each :attr:`DAMPED` field replaced by alpha * self + (1 - alpha) *
        new (ssm's ``convex_combination``)."""
        return SLDSParams(
            **{
                k: alpha * getattr(self, k) + (1 - alpha) * getattr(new, k)
                if k in self.DAMPED
                else getattr(new, k)
                for k in self.__dataclass_fields__
            }
        )


@dataclass
class Moments:
    """Posterior moments of x for a batch: mean (B, T, D), E[x_t x_t^T] (B, T, D, D),
    E[x_{t+1} x_t^T] (B, T-1, D, D)."""

    mean: np.ndarray
    xx: np.ndarray
    cross: np.ndarray
    sample: np.ndarray | None = None

    @classmethod
    def point(cls, x: np.ndarray) -> Moments:
        """Moments of a point mass at x (B, T, D)."""
        outer = x[..., :, None] * x[..., None, :]
        return cls(x, outer, x[:, 1:, :, None] * x[:, :-1, None, :])


def expected_log_dynamics(p: SLDSParams, m: Moments) -> np.ndarray:
    """E_q(x)[log N(x_t; A_k x_{t-1} + b_k, Q_k)] (B, T, K), 0 at t = 0 (shared prior)."""
    n_batch, n_time, dim = m.mean.shape
    k = len(p.A)
    qinv = np.linalg.inv(p.Q)
    qa = qinv @ p.A
    aqa = p.A.transpose(0, 2, 1) @ qa
    qb = (qinv @ p.b[..., None])[..., 0]
    aqb = (p.A.transpose(0, 2, 1) @ qb[..., None])[..., 0]
    flat = dim * dim
    quad = (
        m.xx[:, 1:].reshape(-1, flat) @ qinv.reshape(k, flat).T
        - 2 * m.cross.reshape(-1, flat) @ qa.reshape(k, flat).T
        + m.xx[:, :-1].reshape(-1, flat) @ aqa.reshape(k, flat).T
        - 2 * m.mean[:, 1:].reshape(-1, dim) @ qb.T
        + 2 * m.mean[:, :-1].reshape(-1, dim) @ aqb.T
        + np.einsum("kd,kd->k", p.b, qb)
    )
    logdet = np.linalg.slogdet(p.Q)[1]
    out = np.zeros((n_batch, n_time, k))
    out[:, 1:] = (-0.5 * (quad + logdet + dim * np.log(2 * np.pi))).reshape(n_batch, -1, k)
    return out


def _dynamics_quadratic(p: SLDSParams, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E_q(z)[log p(x | z)] = -x^T J x / 2 + h^T x + const: J's diagonal (B, T, D, D) and
    lower (B, T-1, D, D) blocks and h (B, T, D), for discrete marginals q (B, T, K)."""
    n_batch, n_time, k = q.shape
    dim = p.A.shape[1]
    qinv = np.linalg.inv(p.Q)
    qa = qinv @ p.A
    aqa = p.A.transpose(0, 2, 1) @ qa
    qb = (qinv @ p.b[..., None])[..., 0]
    aqb = (p.A.transpose(0, 2, 1) @ qb[..., None])[..., 0]
    w = q[:, 1:].reshape(-1, k)
    s0inv = np.linalg.inv(p.S0)
    diag = np.zeros((n_batch, n_time, dim, dim))
    diag[:, 0] = s0inv
    diag[:, 1:] += (w @ qinv.reshape(k, -1)).reshape(n_batch, -1, dim, dim)
    diag[:, :-1] += (w @ aqa.reshape(k, -1)).reshape(n_batch, -1, dim, dim)
    lower = -(w @ qa.reshape(k, -1)).reshape(n_batch, -1, dim, dim)
    h = np.zeros((n_batch, n_time, dim))
    h[:, 0] = s0inv @ p.mu0
    h[:, 1:] += (w @ qb).reshape(n_batch, -1, dim)
    h[:, :-1] -= (w @ aqb).reshape(n_batch, -1, dim)
    return diag, lower, h


def _emission_hessian(neg_hess: np.ndarray, c: np.ndarray) -> np.ndarray:
    """C^T diag(w) C for every (trial, time): w (B, T, N) -> (B, T, D, D), one GEMM."""
    n_batch, n_time, _ = neg_hess.shape
    dim = c.shape[1]
    cc = (c[:, :, None] * c[:, None, :]).reshape(len(c), -1)
    return (neg_hess.reshape(-1, len(c)) @ cc).reshape(n_batch, n_time, dim, dim)


def laplace_continuous(
    p: SLDSParams,
    q: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray | None,
    x: np.ndarray,
    link: str,
    newton_iters: int,
    tol: float = 1e-4,
    rng: np.random.Generator | None = None,
) -> Moments:
    """Laplace approximation of q(x) for one batch: Newton from ``x`` (B, T, D) to the mode
    of E_q(z)[log p(x | z)] + log p(y | x), then the moments from the Hessian there.

    ``y`` (B, T, N) counts, ``mask`` (B, T, N) 1 where observed (None: all), ``q`` (B, T, K).
    """
    diag, lower, h = _dynamics_quadratic(p, q)

    def terms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ll, g, w = _poisson_terms(y, x @ p.C.T + p.d, link)
        if mask is not None:
            ll, g, w = ll * mask, g * mask, w * mask
        return ll, g, w

    def objective(x: np.ndarray, ll: np.ndarray) -> np.ndarray:
        jx = _btd_matvec(diag, lower, x)
        return ll.sum(axis=(1, 2)) + np.einsum("btd,btd->b", h - 0.5 * jx, x)

    ll, g, w = terms(x)
    obj = objective(x, ll)
    for _ in range(newton_iters):
        grad = h - _btd_matvec(diag, lower, x) + g @ p.C
        inv = btd_factor(diag + _emission_hessian(w, p.C), lower)
        step = btd_solve(inv, lower, grad)
        size = np.ones(len(x))
        todo = np.ones(len(x), dtype=bool)
        for _ in range(10):  # step halving per trial until the objective rises
            trial = x + size[:, None, None] * step
            ll_t, g_t, w_t = terms(trial)
            obj_t = objective(trial, ll_t)
            ok = todo & (obj_t >= obj - 1e-9 * np.abs(obj))
            x[ok], ll[ok], g[ok], w[ok], obj[ok] = trial[ok], ll_t[ok], g_t[ok], w_t[ok], obj_t[ok]
            todo &= ~ok
            if not todo.any():
                break
            size[todo] *= 0.5
        if np.max(np.abs(size[:, None, None] * step)) < tol:
            break
    inv = btd_factor(diag + _emission_hessian(w, p.C), lower)
    cov, cross = btd_covariances(inv, lower)
    outer = x[..., :, None] * x[..., None, :]
    sample = None if rng is None else x + btd_sample(inv, lower, rng)
    return Moments(x, cov + outer, cross + x[:, 1:, :, None] * x[:, :-1, None, :], sample)


@dataclass
class Stats:
    """Expected sufficient statistics for the dynamics M-step, summed over trials: per state
    E[u u^T] (K, D+1, D+1), E[u x_t^T] (K, D+1, D), E[x_t x_t^T] (K, D, D) with u = [x_{t-1}, 1],
    weights (K,); transition counts (K, K); first-bin marginals (K,), E[x_0] (D,), E[x_0 x_0^T]
    (D, D) and the trial count."""

    uu: np.ndarray
    uy: np.ndarray
    yy: np.ndarray
    n: np.ndarray
    trans: np.ndarray
    z0: np.ndarray
    x0: np.ndarray
    xx0: np.ndarray
    n_trials: int = 0

    @classmethod
    def zeros(cls, k: int, dim: int) -> Stats:
        return cls(
            np.zeros((k, dim + 1, dim + 1)),
            np.zeros((k, dim + 1, dim)),
            np.zeros((k, dim, dim)),
            np.zeros(k),
            np.zeros((k, k)),
            np.zeros(k),
            np.zeros(dim),
            np.zeros((dim, dim)),
        )

    def add(self, q: np.ndarray, counts: np.ndarray, m: Moments) -> None:
        """Accumulate one batch: marginals q (B, T, K), transition counts, moments."""
        k = q.shape[2]
        dim = m.mean.shape[2]
        w = q[:, 1:].reshape(-1, k).T  # (K, B*(T-1))
        prev, cur = m.mean[:, :-1].reshape(-1, dim), m.mean[:, 1:].reshape(-1, dim)
        self.uu[:, :dim, :dim] += (w @ m.xx[:, :-1].reshape(-1, dim * dim)).reshape(k, dim, dim)
        self.uu[:, :dim, dim] += w @ prev
        self.uu[:, dim, :dim] += w @ prev
        self.uu[:, dim, dim] += w.sum(axis=1)
        # E[x_{t-1} x_t^T] is the transpose of the stored E[x_t x_{t-1}^T]
        cross_t = m.cross.transpose(0, 1, 3, 2).reshape(-1, dim * dim)
        self.uy[:, :dim] += (w @ cross_t).reshape(k, dim, dim)
        self.uy[:, dim] += w @ cur
        self.yy += (w @ m.xx[:, 1:].reshape(-1, dim * dim)).reshape(k, dim, dim)
        self.n += w.sum(axis=1)
        self.trans += counts
        self.z0 += q[:, 0].sum(axis=0)
        self.x0 += m.mean[:, 0].sum(axis=0)
        self.xx0 += m.xx[:, 0].sum(axis=0)
        self.n_trials += len(q)


def m_step_dynamics(p: SLDSParams, s: Stats, l2_a: float, l2_b: float) -> SLDSParams:
    """Ridge M-step for A_k (towards I), b_k (towards 0), Q_k; P, pi and the x_0 prior from
    the statistics ``s``."""
    k, dim = p.b.shape
    prior = np.diag(np.r_[np.full(dim, l2_a), l2_b])
    prior_mean = np.r_[l2_a * np.eye(dim), np.zeros((1, dim))]  # ssm's h0: A -> I, b -> 0
    a, b, q = p.A.copy(), p.b.copy(), p.Q.copy()
    for i in range(k):
        if s.n[i] < 1:  # an unused state keeps its parameters
            continue
        w = np.linalg.solve(s.uu[i] + prior, s.uy[i] + prior_mean).T  # (D, D+1)
        wuy = w @ s.uy[i]
        resid = s.yy[i] - wuy - wuy.T + w @ s.uu[i] @ w.T + PSI0 * np.eye(dim)
        a[i], b[i] = w[:, :dim], w[:, dim]
        q[i] = 0.5 * (resid + resid.T) / (s.n[i] + NU0 + dim + 1)
    trans = s.trans + 1e-32
    trans /= trans.sum(axis=1, keepdims=True)
    pi = (s.z0 + 1e-32) / (s.z0.sum() + k * 1e-32)
    mu0 = s.x0 / s.n_trials
    s0 = s.xx0 / s.n_trials - np.outer(mu0, mu0) + 1e-4 * np.eye(dim)
    return SLDSParams(pi, trans, a, b, q, mu0, 0.5 * (s0 + s0.T), p.C, p.d)


def m_step_emissions(
    p: SLDSParams, x: np.ndarray, y: np.ndarray, link: str, maxiter: int
) -> tuple[np.ndarray, np.ndarray]:
    """C, d raising sum log Poisson(y | f(C x + d)) over (B, T) bins by L-BFGS (joint over
    neurons; the problem is separable and concave), from the current values.

    Stopped as ssm's (``optimizers.lbfgs``, scipy's ``tol=1e-4``): after ``maxiter``
    iterations or once the relative decrease of the objective (minus the log-likelihood per
    bin, log y! included as in ssm) or the largest gradient entry falls to 1e-4 — about 20
    iterations on MC_Maze_Small, a partial step rather than the maximiser.
    """
    n, dim = p.C.shape
    xs = x.reshape(-1, dim)
    ys = y.reshape(-1, n)
    scale = 1.0 / len(xs)
    # log y!: a constant, kept (as ssm) because it sets the relative tolerance's scale
    log_fact = sum(float(gammaln(ys[rows] + 1.0).sum()) for rows in _batches(len(ys), EMISSION_CHUNK))
    log_fact *= scale

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        cd = theta.reshape(n, dim + 1)
        total, grad = 0.0, np.zeros((n, dim + 1))
        for rows in _batches(len(xs), EMISSION_CHUNK):  # bounded memory at any data size
            x_r = xs[rows]
            ll, g, _ = _poisson_terms(ys[rows], x_r @ cd[:, :dim].T + cd[:, dim], link, hess=False)
            total += ll.sum()
            grad[:, :dim] += g.T @ x_r
            grad[:, dim] += g.sum(axis=0)
        return log_fact - total * scale, -grad.ravel() * scale

    theta0 = np.concatenate([p.C, p.d[:, None]], axis=1).ravel()
    res = optimize.minimize(
        loss, theta0, jac=True, method="L-BFGS-B", tol=SSM_LBFGS_TOL, options={"maxiter": maxiter}
    )
    cd = res.x.reshape(n, dim + 1)
    return cd[:, :dim], cd[:, dim]


def _moving_average(y: np.ndarray, width: int) -> np.ndarray:
    """Centered moving average along time of (B, T, N), shrinking at the edges."""
    width = min(width, y.shape[1])
    csum = np.concatenate([np.zeros_like(y[:, :1]), np.cumsum(y, axis=1)], axis=1)
    t = np.arange(y.shape[1])
    lo = np.clip(t - width // 2, 0, y.shape[1])
    hi = np.clip(t - width // 2 + width, 0, y.shape[1])
    return (csum[:, hi] - csum[:, lo]) / (hi - lo)[None, :, None]


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class SLDSFit:
    """A Poisson SLDS fit by Laplace-EM (see the module docstring). ``fit`` on train spikes
    (B, T, N); ``infer`` on eval spikes with a mask; ``rates`` from posterior means."""

    def __init__(
        self,
        n_states: int,
        n_latents: int,
        l2_a: float,
        l2_b: float,
        cfg: SLDSConfig,
        seed: int = 0,
    ) -> None:
        self.k, self.dim, self.l2_a, self.l2_b = n_states, n_latents, l2_a, l2_b
        self.cfg = cfg
        self.seed = seed
        self.params: SLDSParams | None = None
        self.log_likelihoods: list[float] = []

    # -- initialisation ------------------------------------------------------------------

    def _init_emissions(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PCA of the inverted smoothed counts: C (N, D), d (N,), x (B, T, D)."""
        eta = _inverse_rate(np.maximum(_moving_average(y, 20), 0.01), self.cfg.link)
        flat = eta.reshape(-1, eta.shape[2])
        d = flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat - d, full_matrices=False)
        c = vt[: self.dim].T
        if c.shape[1] < self.dim:  # fewer neurons than latents
            c = np.pad(c, ((0, 0), (0, self.dim - c.shape[1])))
        x = (eta - d) @ c
        return c, d, x

    def _init_arhmm(self, x: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        """EM for the autoregressive HMM on point states x; sets self.params, returns q(z)."""
        from sklearn.cluster import KMeans

        k, dim = self.k, self.dim
        labels = KMeans(k, n_init=1, random_state=self.seed).fit_predict(x.reshape(-1, dim))
        q = np.eye(k)[labels].reshape(*x.shape[:2], k)
        counts = np.einsum("btk,btl->kl", q[:, :-1], q[:, 1:])
        p = SLDSParams(
            np.full(k, 1.0 / k),
            np.full((k, k), 1.0 / k),
            np.zeros((k, dim, dim)),
            np.zeros((k, dim)),
            np.tile(np.eye(dim), (k, 1, 1)),
            np.zeros(dim),
            np.eye(dim),
            c,
            d,
        )
        for _ in range(self.cfg.n_init_iters + 1):
            s = Stats.zeros(k, dim)
            for sl in _batches(len(x), self.cfg.batch_trials):
                s.add(q[sl], np.zeros((k, k)), Moments.point(x[sl]))
            s.trans = counts
            p = m_step_dynamics(p, s, self.l2_a, self.l2_b)
            q, counts = self._discrete_at_points(p, x)
        self.params = p
        return q

    def _discrete_at_points(self, p: SLDSParams, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """q(z) (B, T, K) and summed transition counts (K, K) given point states x (B, T, D)."""
        q = np.empty((*x.shape[:2], self.k))
        counts = np.zeros((self.k, self.k))
        for sl in _batches(len(x), self.cfg.batch_trials):
            log_like = expected_log_dynamics(p, Moments.point(x[sl]))
            q[sl], c, _ = forward_backward(np.log(p.pi), p.trans, log_like)
            counts += c
        return q, counts

    # -- EM ---------------------------------------------------------------------------------

    def _e_step(
        self,
        y: np.ndarray,
        mask: np.ndarray | None,
        x: np.ndarray,
        q: np.ndarray,
        draws: np.ndarray | None = None,
    ) -> tuple[Stats, float]:
        """One q(x) then q(z) update of every trial, in place on x (B, T, D), q (B, T, K)
        (and, if given, one draw from q(x) into ``draws``); returns the summed statistics and
        the Poisson log-likelihood per bin at the means."""
        p = self.params
        assert p is not None
        stats = Stats.zeros(self.k, self.dim)
        total = 0.0
        for sl in _batches(len(y), self.cfg.batch_trials):
            bmask = None if mask is None else mask[sl]
            m = laplace_continuous(
                p,
                q[sl],
                y[sl],
                bmask,
                x[sl].copy(),
                self.cfg.link,
                self.cfg.newton_iters,
                rng=None if draws is None else self.rng,
            )
            x[sl] = m.mean
            if draws is not None:
                draws[sl] = m.sample
            post, counts, _ = forward_backward(np.log(p.pi), p.trans, expected_log_dynamics(p, m))
            q[sl] = post
            stats.add(post, counts, m)
            ll, _, _ = _poisson_terms(y[sl], m.mean @ p.C.T + p.d, self.cfg.link, hess=False)
            total += float((ll if bmask is None else ll * bmask).sum())
        n_obs = y[..., 0].size if mask is None else mask[..., 0].sum()
        return stats, total / max(float(n_obs), 1.0)

    def fit(self, y: np.ndarray) -> np.ndarray:
        """Fit on counts (B, T, N); returns the posterior mean states (B, T, D)."""
        c, d, x = self._init_emissions(y)
        q = self._init_arhmm(x, c, d)
        self.rng = np.random.default_rng(self.seed)
        draws = np.empty_like(x)
        bar = tqdm(range(self.cfg.n_iters), desc="SLDS Laplace-EM", leave=False, disable=None)
        for _ in bar:
            stats, ll = self._e_step(y, None, x, q, draws)
            p = self.params
            assert p is not None
            new = m_step_dynamics(p, stats, self.l2_a, self.l2_b)
            new.C, new.d = m_step_emissions(p, draws, y, self.cfg.link, self.cfg.emission_iters)
            self.params = p.damped(new, self.cfg.alpha)
            self.log_likelihoods.append(ll)
            bar.set_postfix(ll=f"{ll:.4f}")
        self.train_states, self.last_q = x, q
        return x

    def infer(self, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Posterior mean states (B, T, D) of counts y (B, T, N) observed where ``mask``."""
        p = self.params
        require(p is not None, "SLDS: infer() before fit()")
        assert p is not None
        y = np.where(mask, y, 0.0)  # nothing unobserved reaches the fit
        observed = mask.any(axis=(0, 1))
        eta = _inverse_rate(np.maximum(_moving_average(y, 20), 0.01), self.cfg.link)
        x = np.linalg.lstsq(
            p.C[observed],
            (eta[..., observed] - p.d[observed]).reshape(-1, observed.sum()).T,
            rcond=None,
        )[0].T.reshape(*y.shape[:2], self.dim)
        x[~mask.any(axis=2)] = 0.0
        q, _ = self._discrete_at_points(p, x)
        weights = mask.astype(float)
        for _ in range(self.cfg.n_iters):
            self._e_step(y, weights, x, q)
        return x

    def rates(self, x: np.ndarray) -> np.ndarray:
        """Rates f(C x + d) (B, T, N) at states x (B, T, D)."""
        p = self.params
        assert p is not None
        return _rate(x @ p.C.T + p.d, self.cfg.link)
