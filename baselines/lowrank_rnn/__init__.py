"""Stochastic low-rank RNN fit by variational sequential Monte Carlo (Pals et al. 2024).

Generative model (rank R, ``n_units`` units, latent z in R^R, neurons x)::

    z_0     ~ N(mu_0, diag Sigma_0)
    z_{t+1} = a * z_t + n.T phi(m z_t + h) + eps,   eps ~ N(0, diag Sigma)
    x_t     ~ Poisson(softplus(B z_t + b))          (or exp)

with ``a = exp(-exp(theta))``, ``J = m n.T`` the rank-R connectivity of the units and phi
the clipped ReLU ``clip(x, 0, 1)`` (or ReLU). Training maximises the VSMC bound
``sum_t log mean_k w_t^k`` with K particles: the proposal multiplies the transition density
with a Gaussian from a convolutional encoder of the held-in spikes (causal, acausal =
look-ahead, or centred window), weights are ``p(x_t|z_t) p(z_t|z_{t-1}) / q(z_t)`` and
particles are resampled systematically at every step (resampling not differentiated, as in
the paper). ``proposal="bootstrap"`` uses the transition alone. In the forward window
(and wherever no data is observed) the transition is the proposal.

Prediction runs the same particle filter on the held-in spikes only and averages the
weighted rates over particles and ``n_samples`` repeats; the forward window runs the
dynamics on. ``dynamics()`` exports the noise-free map for the exact fixed-point finder.

This module is light (config, presets, adapter; NumPy only): listing models and finding fixed
points (:mod:`baselines.lowrank_rnn.fixed_points`) do not import torch. The torch network,
the particle filter and training live in :mod:`baselines.lowrank_rnn.network`, imported when
a model is fitted or used.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from baselines.lowrank_rnn.fixed_points import (
    FixedPoints,
    PiecewiseLinearRNN,
    brute_force_fixed_points,
    find_fixed_points,
)
from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo, fixed_threads
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import require

if TYPE_CHECKING:  # pragma: no cover
    from baselines.lowrank_rnn.network import LowRankSSM, run_smc, systematic_resample

#: Torch names served lazily from :mod:`baselines.lowrank_rnn.network`.
_NETWORK = ("LowRankSSM", "run_smc", "systematic_resample")

__all__ = [
    "FixedPoints",
    "LowRankRNN",
    "LowRankRNNConfig",
    "LowRankSSM",
    "PiecewiseLinearRNN",
    "brute_force_fixed_points",
    "find_fixed_points",
    "run_smc",
    "systematic_resample",
]


@dataclass
class LowRankRNNConfig(ModelConfig):
    """Hyperparameters. ``rank``: latent dimension R; ``n_units``: RNN units; ``encoder``:
    "acausal" (look-ahead window, the paper's NLB setting), "causal" or "centered";
    ``posterior``: "filter" (SMC filtering means) or "smooth" (backward-simulation smoother)
    at prediction; ``n_samples``: prediction repeats averaged, each with
    ``predict_particles`` particles; ``updates``: optimizer steps (training runs whole
    epochs until at least this many; the learning rate decays exponentially from ``lr`` to
    ``lr_end``);
    ``val_fraction`` of the train trials pick the best of ``n_evals`` checkpoints by
    held-out co-smoothing likelihood; ``train_on_eval_heldin`` also fits the eval
    trials' held-in spikes (allowed by NLB rules). ``bin_ms``: the model's time step; finer
    data bins are summed into steps of (about) this width, rates interpolated back."""

    rank: int = 8
    n_units: int = 128
    bin_ms: int = 20
    nonlinearity: str = "clipped_relu"
    link: str = "softplus"
    n_particles: int = 16
    proposal: str = "encoder"
    encoder: str = "acausal"
    enc_channels: int = 64
    enc_kernels: tuple[int, ...] = (7, 5, 3)
    init_decay: float = 0.9
    init_noise: float = 0.1
    init_noise_t0: float = 1.0
    updates: int = 6000
    batch_size: int = 16
    lr: float = 5e-3
    lr_end: float = 1e-4
    grad_clip: float = 10.0
    val_fraction: float = 0.1
    n_evals: int = 12
    train_on_eval_heldin: bool = True
    posterior: str = "filter"
    predict_particles: int = 64
    n_samples: int = 2
    num_threads: int = 1


def bin_factor(bin_ms: int, data_bin_ms: int, n_bins: int, n_forward: int) -> int:
    """Data bins per model step: about ``bin_ms / data_bin_ms``, dividing both windows."""
    factor = max(1, int(bin_ms) // int(data_bin_ms))
    while n_bins % factor or n_forward % factor:
        factor -= 1
    return factor


def coarsen(spikes: np.ndarray, factor: int) -> np.ndarray:
    """Sum (trial, time, neuron) counts over groups of ``factor`` bins."""
    n_trials, n_time, n_neurons = spikes.shape
    return spikes.reshape(n_trials, n_time // factor, factor, n_neurons).sum(axis=2)


def refine(rates: np.ndarray, factor: int) -> np.ndarray:
    """Rates per model step (trial, steps, neuron) -> per data bin (trial, steps * factor,
    neuron): linear interpolation between step centres (held flat at the ends), / factor."""
    if factor == 1:
        return rates
    n_steps = rates.shape[1]
    pos = np.clip((np.arange(n_steps * factor) + 0.5) / factor - 0.5, 0, n_steps - 1)
    left = np.floor(pos).astype(int)
    right = np.minimum(left + 1, n_steps - 1)
    frac = (pos - left)[None, :, None]
    return ((1 - frac) * rates[:, left] + frac * rates[:, right]) / factor


class LowRankRNN(ModelAdapter):
    """Stochastic low-rank RNN, VSMC inference, exact fixed points (see module docstring)."""

    info = ModelInfo(
        name="lowrank_rnn",
        citation="Pals, Sağtekin, Pei, Gloeckler, Macke 2024, Inferring stochastic low-rank "
        "recurrent neural networks from neural data (arXiv 2406.16749)",
        url="https://github.com/mackelab/smc_rnns",
        stochastic=True,
        description="rank-R stochastic piecewise-linear RNN, variational SMC, Poisson readout",
    )
    config_class = LowRankRNNConfig
    presets: ClassVar = {
        "smoke": {
            "rank": 2,
            "n_units": 16,
            "n_particles": 4,
            "enc_channels": 8,
            "enc_kernels": (3, 3),
            "updates": 12,
            "batch_size": 16,
            "lr": 1e-2,
            "n_evals": 3,
            "predict_particles": 8,
            "n_samples": 1,
        },
        "cpu": {"link": "exp"},
        "paper": {
            "rank": 36,
            "n_units": 512,
            "n_particles": 64,
            "enc_channels": 128,
            "enc_kernels": (14, 4, 2),
            "init_decay": 0.9,
            "init_noise": 0.05,
            "updates": 216_000,  # 2000 epochs of MC_Maze (20 ms) at batch 16
            "batch_size": 16,
            "lr": 1e-3,
            "lr_end": 1e-5,
            "grad_clip": 0.0,
            "n_evals": 40,
            "predict_particles": 192,
            "n_samples": 32,
        },
    }

    # -- helpers --------------------------------------------------------------------------

    @property
    def cfg(self) -> LowRankRNNConfig:
        assert isinstance(self.config, LowRankRNNConfig)
        return self.config

    def _check_config(self) -> None:
        c = self.cfg
        require(c.rank >= 1 and c.n_units >= 1, "rank and n_units must be at least 1")
        require(
            c.nonlinearity in ("clipped_relu", "relu"),
            f"nonlinearity '{c.nonlinearity}': expected clipped_relu or relu",
        )
        require(c.link in ("softplus", "exp"), f"link '{c.link}': expected softplus or exp")
        require(
            c.proposal in ("encoder", "bootstrap"),
            f"proposal '{c.proposal}': expected encoder or bootstrap",
        )
        require(
            c.encoder in ("causal", "acausal", "centered"),
            f"encoder '{c.encoder}': expected causal, acausal or centered",
        )
        require(
            c.posterior in ("filter", "smooth"),
            f"posterior '{c.posterior}': expected filter or smooth",
        )
        require(len(c.enc_kernels) >= 1, "enc_kernels needs at least one kernel size")

    @fixed_threads
    def fit(self, data: PhaseData) -> None:
        self._check_config()
        from baselines.lowrank_rnn import network

        network.fit(self, data)

    @fixed_threads
    def predict(self, data: PhaseData) -> Rates:
        require(hasattr(self, "model"), "lowrank_rnn: call fit() before predict()")
        from baselines.lowrank_rnn import network

        return network.predict(self, data)

    def latents(self, heldin: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Posterior mean latent trajectories (trial, model step, R) of held-in spikes
        (trial, data bin, neuron)."""
        from baselines.lowrank_rnn import network

        seed = self.seed + 3 if seed is None else seed
        steps = coarsen(np.asarray(heldin, dtype=np.float32), self.factor)
        return network.posterior(self, steps, seed, 0)[0]

    def dynamics(self) -> PiecewiseLinearRNN:
        """The fitted noise-free latent map, for :func:`find_fixed_points`."""
        require(hasattr(self, "model"), "lowrank_rnn: the model is not fitted")
        mdl = self.model
        a = float(mdl.decay.detach().cpu())
        return PiecewiseLinearRNN(
            a=np.full(mdl.m.shape[1], a),
            m=mdl.m.detach().cpu().double().numpy(),
            n=mdl.n.detach().cpu().double().numpy(),
            h=mdl.h.detach().cpu().double().numpy(),
            nonlinearity=mdl.nonlinearity,
        )

    def __getstate__(self) -> dict:
        """Pickle with the torch model on the CPU, so a run saved on a GPU loads anywhere."""
        state = self.__dict__.copy()
        if "model" in state:
            state["model"] = copy.deepcopy(self.model).cpu()
        return state

    def n_parameters(self) -> int:
        if not hasattr(self, "model"):
            return 0
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


def __getattr__(name: str) -> Any:
    """The torch network's names, imported on first use (and for pickles that name them)."""
    if name in _NETWORK:
        from baselines.lowrank_rnn import network

        return getattr(network, name)
    raise AttributeError(f"module 'baselines.lowrank_rnn' has no attribute {name!r}")
