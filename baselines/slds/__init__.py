"""NLB's SLDS baseline (nlb_tools ``examples/baselines/slds/run_slds.py``), in numpy.

Model (as ``ssm.SLDS(N, K, D, transitions="standard", emissions="poisson",
emission_kwargs=dict(link="softplus"))``): a discrete state z_t in 1..K follows a stationary
Markov chain (initial distribution pi, transition matrix P); the continuous state x_t in R^D
follows x_0 ~ N(mu0, S0), x_t = A_{z_t} x_{t-1} + b_{z_t} + N(0, Q_{z_t}); each neuron's count
is y_tn ~ Poisson(f(C x_t + d)_n) with f = softplus (or exp, ``link="log"``).

Fit: Laplace-EM with a structured mean-field posterior q(z) q(x), as ssm's ``laplace_em``:

- **Continuous states**: q(x) is the Laplace approximation of
  exp(E_q(z)[log p(x | z)] + log p(y | x)). The objective is concave in x; its Hessian is
  block tridiagonal (D x D blocks), so each Newton step is one block-tridiagonal Cholesky
  (Schur complements forward, substitution backward), batched over trials; a step is halved
  per trial until the objective rises. At the mode the same factorisation gives the posterior
  covariances Cov(x_t) and Cov(x_{t+1}, x_t) (backward recursion), hence E[x_t x_t^T] and
  E[x_{t+1} x_t^T].
- **Discrete states**: forward-backward on the expected log dynamics likelihoods
  E_q(x)[log N(x_t; A_k x_{t-1} + b_k, Q_k)] (closed form from the moments above).
- **Dynamics**: per state a weighted ridge regression of x_t on [x_{t-1}, 1] from the
  expected sufficient statistics, L2 penalties ``l2_penalty_A`` pulling A_k towards the
  identity and ``l2_penalty_b`` pulling b_k towards 0 (ssm's Gaussian prior J0, h0),
  Q_k from the expected residuals (inverse-Wishart prior nu0 = psi0 = 1e-4, as ssm).
  P and pi from the expected transition counts and first-bin marginals.
- **Emissions**: C, d by L-BFGS on the Poisson log-likelihood at one draw from q(x), as
  ssm (the draw carries the posterior uncertainty; at the means C grew and the latent
  scale shrank every iteration, over-fitting: co-bps fell below 0 on MC_Maze_Small), with
  ssm's stopping rule (tol 1e-4 on the relative decrease or the gradient, at most
  ``emission_iters`` iterations): about 20 iterations a step, not the maximiser. Run to
  all 100 iterations instead (this port until 2026-12-01), C grew larger (|C|_F 7.5 vs
  5.2; ssm's 3.8-4.1) and co-bps on MC_Maze_Small 5 ms seed 0 was 0.1283 instead of
  0.1891 (benchmarks/README.md, "SLDS against nlb_tools' tutorial").
- As ssm's, the updates of pi, P, C and d are damped, new = alpha * old + (1 - alpha) *
  update; the dynamics (A_k, b_k, Q_k, x_0's prior) take their exact M-step.
- **Initialisation** (after ssm's ``initialize``): counts smoothed by a 20-bin moving average,
  inverted through the link, PCA to D dims gives C, d and x; k-means on x gives z; then
  ``n_init_iters`` EM iterations of the autoregressive HMM on the PCA states.
- **Inference on eval trials** (ssm's ``approximate_posterior``): the same alternating
  updates with the parameters fixed, the likelihood masked to the observed entries
  (held-in neurons, observation window), ``n_iters`` times. Rates are f(C E[x_t] + d), as
  ssm's ``smooth``: held-out neurons and the forward window come from the posterior states.

Departures from ssm (lindermanlab/ssm ``lds.py``, ``emissions.py``, ``variational.py``,
read for this port; NLB's fork felixp8/ssm was not reachable): q(z) uses the exact Gaussian
expectation of the dynamics likelihood instead of one Monte Carlo sample of x; x_0's prior
(mean, covariance) is learnt and shared across states (ssm (master of 2021-08, the tutorial's
date) fixes it at N(0, I) and never updates it); pi and P are damped as probabilities (ssm
damps their logs); each
iteration updates q(x) before q(z) (ssm: q(z) first, from a draw of the initial
q(x) = N(inverted data, 0.01 I)); the init inverts 20-bin moving averages of the counts
(ssm inverts ``clip(y, 0.1)`` bin by bin, then rotates the PCA basis at random) and seeds
the ARHMM with k-means (ssm: random states); Newton stops after ``newton_iters`` (ssm: up
to 100 at tolerance 1e-4); eval trials start from a least-squares inversion of the observed
entries (ssm: PCA imputation).

Presets: ``cpu`` is nlb_tools' SLDS tutorial (``slds_example.ipynb``: K=3, D=15,
l2_penalty_A=3000, 25 + 25 iterations, alpha 0.2, **log link**; its MC_Maze_Small 5 ms val
co-bps is 0.1533); ``paper`` is ``run_slds.py`` (NLB's per-dataset K, D, penalties, 50 + 50
iterations, softplus link).

Training data, as NLB's script: train trials with their forward bins, held-in and held-out
neurons (``PhaseData.train_spikes_full``).

Threads: ``fit`` and ``predict`` run on one BLAS thread (as gpfa, smoothing): threaded sums
differ in the last bits with the thread count, and the EM iterations amplify that (0.1288
vs 0.1283 co-bps at 5 ms between a 2-thread and a 1-thread run of one seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo, fixed_threads
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import require

#: NLB's per-dataset (K states, D latents, l2_penalty_A, l2_penalty_b), from run_slds.py.
NLB_SLDS_PARAMS: dict[str, tuple[int, int, float, float]] = {
    "mc_maze": (6, 38, 30000.0, 6.264734351046042e-05),
    "mc_rtt": (8, 20, 5088.303423769022, 2.0595034155496943e-07),
    "area2_bump": (4, 15, 10582.770724811768, 3.982037833098992e-05),
    "dmfc_rsg": (10, 30, 30000.0, 1e-05),
    "mc_maze_large": (4, 28, 5462.032425984561, 2.1670446099229413e-05),
    "mc_maze_medium": (3, 20, 2391.229442269956, 1.258022745020434e-05),
    "mc_maze_small": (5, 15, 5837.898552701826, 1.2150060110686535e-08),
}
#: nlb_tools' SLDS tutorial settings (K, D, l2_penalty_A, l2_penalty_b = ssm's default).
TUTORIAL_PARAMS = (3, 15, 3000.0, 1e-8)
NU0 = PSI0 = 1e-4  # ssm's inverse-Wishart prior on Q_k
MIN_RATE = 1e-12
EMISSION_CHUNK = 32768  # bins per block of the emission update


@dataclass
class SLDSConfig(ModelConfig):
    """None for ``n_states`` / ``n_latents`` / ``l2_penalty_*`` picks NLB's value for the
    dataset (nlb_tools' tutorial values where NLB has none). ``alpha``: damping of the
    discrete-state and emission updates (ssm's). ``emission_iters``: the most L-BFGS
    iterations per emission M-step (ssm's ``emission_optimizer_maxiter``, 100; ssm's
    tolerance usually stops it sooner). ``batch_trials``: trials
    per E-step batch (memory)."""

    n_states: int | None = None
    n_latents: int | None = None
    l2_penalty_A: float | None = None
    l2_penalty_b: float | None = None
    n_iters: int = 50
    n_init_iters: int = 50
    alpha: float = 0.2
    link: str = "softplus"
    newton_iters: int = 20
    emission_iters: int = 100
    batch_trials: int = 64


class SLDS(ModelAdapter):
    """Switching linear dynamical system with Poisson emissions, fit by Laplace-EM."""

    info = ModelInfo(
        name="slds",
        citation=(
            "Linderman et al. 2017 (AISTATS); Zoltowski et al. 2020 (ICML, Laplace-EM); "
            "Pei et al. 2021, Neural Latents Benchmark '21"
        ),
        url="https://github.com/neurallatents/nlb_tools/tree/main/examples/baselines/slds",
        description="SLDS, Poisson softplus emissions, Laplace-EM (numpy re-implementation of ssm)",
    )
    config_class = SLDSConfig
    presets: ClassVar = {
        "smoke": {
            "n_states": 2,
            "n_latents": 4,
            "l2_penalty_A": 3000.0,
            "l2_penalty_b": 1e-8,
            "n_iters": 3,
            "n_init_iters": 3,
            "newton_iters": 5,
            "emission_iters": 10,
        },
        "cpu": {  # nlb_tools' SLDS tutorial (slds_example.ipynb), its log link included
            "n_states": TUTORIAL_PARAMS[0],
            "n_latents": TUTORIAL_PARAMS[1],
            "l2_penalty_A": TUTORIAL_PARAMS[2],
            "l2_penalty_b": TUTORIAL_PARAMS[3],
            "n_iters": 25,
            "n_init_iters": 25,
            "link": "log",
        },
        "paper": {},
    }

    def _settings(self, dataset: str) -> tuple[int, int, float, float]:
        cfg = self.config
        assert isinstance(cfg, SLDSConfig)
        k, dim, l2_a, l2_b = NLB_SLDS_PARAMS.get(dataset, TUTORIAL_PARAMS)
        return (
            cfg.n_states or k,
            cfg.n_latents or dim,
            l2_a if cfg.l2_penalty_A is None else cfg.l2_penalty_A,
            l2_b if cfg.l2_penalty_b is None else cfg.l2_penalty_b,
        )

    @fixed_threads
    def fit(self, data: PhaseData) -> None:
        cfg = self.config
        assert isinstance(cfg, SLDSConfig)
        require(
            cfg.link in ("softplus", "log"), f"config link='{cfg.link}': expected softplus or log"
        )
        k, dim, l2_a, l2_b = self._settings(data.dataset)
        from baselines.slds.network import SLDSFit

        self.model = SLDSFit(k, dim, l2_a, l2_b, cfg, self.seed)
        self.model.fit(data.train_spikes_full().astype(np.float64))

    @fixed_threads
    def predict(self, data: PhaseData) -> Rates:
        n_eval, n_bins, n_in = data.eval_spikes_heldin.shape
        n_neurons = n_in + data.n_heldout
        n_time = n_bins + data.n_forward
        y = np.zeros((n_eval, n_time, n_neurons))
        y[:, :n_bins, :n_in] = data.eval_spikes_heldin
        mask = np.zeros(y.shape, dtype=bool)
        mask[:, :n_bins, :n_in] = True
        eval_rates = self.model.rates(self.model.infer(y, mask))
        train_rates = self.model.rates(self.model.train_states)
        return Rates.from_full(train_rates[:, :n_bins], eval_rates, n_in, n_bins)

    def n_parameters(self) -> int:
        model = getattr(self, "model", None)
        if model is None or model.params is None:
            return 0
        p = model.params
        return int(sum(getattr(p, f).size for f in p.__dataclass_fields__))


def __getattr__(name: str) -> Any:
    """The fitting code's names (numba, scipy), imported on first use and for pickles."""
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    network = importlib.import_module("baselines.slds.network")
    if hasattr(network, name):
        return getattr(network, name)
    raise AttributeError(f"module 'baselines.slds' has no attribute {name!r}")
