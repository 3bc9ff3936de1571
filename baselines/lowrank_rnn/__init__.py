"""Stochastic low-rank RNN fit by variational sequential Monte Carlo (Pals et al. 2024).

Generative model (rank R, ``n_units`` units, latent z in R^R, neurons x)::

    z_0     ~ N(mu_0, diag Sigma_0)
    z_{t+1} = a * z_t + n.T phi(m z_t + h) + eps,   eps ~ N(0, diag Sigma)
    x_t     ~ Poisson(softplus(B z_t + b))          (or exp)

with ``a = exp(-exp(theta))`` and ``J = m n.T`` the rank-R connectivity of the units. The
unit ``phi`` is the authors' ``relu(m z + h) - relu(m z)`` ("relu_diff": one breakpoint at
the origin, one at -h, height h; the ``paper`` preset), the clipped ReLU ``clip(m z + h, 0,
1)`` ("clipped_relu": fixed height 1, breakpoints at -h and 1 - h; the ``cpu`` preset) or
the ReLU. Training maximises the VSMC bound
``sum_t log mean_k w_t^k`` with K particles: the proposal multiplies the transition density
with a Gaussian from a convolutional encoder of the held-in spikes (causal, acausal =
look-ahead, or centred window), weights are ``p(x_t|z_t) p(z_t|z_{t-1}) / q(z_t)`` and
particles are resampled systematically at every step (resampling not differentiated, as in
the paper). ``proposal="bootstrap"`` uses the transition alone. In the forward window
(and wherever no data is observed) the transition is the proposal.

Prediction runs the same particle filter on the held-in spikes only and averages the
weighted rates over particles and ``n_samples`` repeats; the forward window runs the
dynamics on. ``dynamics()`` exports the noise-free map for the exact fixed-point finder.

:meth:`LowRankRNN.generate` samples trials from the fitted model; :func:`compare_variability`
compares their trial-to-trial variability (Fano factors, pairwise count correlations) with
real trials, the paper's check of a generative model.

Departures from the authors' code (mackelab/smc_rnns), each fixed, an option or a choice:

- unit: "relu_diff" is theirs (``paper``); "clipped_relu" (``cpu``) is a different family
  kept as an option (option). The exact fixed-point finder handles all three.
- encoder log-variance init log(0.05^2) and RAdam are theirs: ``enc_init_std=0.05``,
  ``optimizer="radam"`` in ``paper`` (``ci``: their init, Adam); ``cpu`` keeps the default
  conv init (the proposal starts near the transition, a near-bootstrap filter) and Adam
  (option).
- the encoder's mean and log-variance come from one final conv (theirs: two convs on the
  same features; the same function class) (choice).
- checkpoint selection on held-out likelihood of validation train trials; theirs selects on
  NLB co-bps of the eval split each few epochs and stops early on the training bound
  (choice: selection must not see eval targets).
- bins: data finer than ``bin_ms`` are summed into model steps and rates interpolated back
  (choice; theirs train at 20 ms).
- prediction averages the filtering (or FFBSi smoothing) posterior over particles and
  ``n_samples`` repeats (the suite's rule: mean of rates).

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
    "Generated",
    "LowRankRNN",
    "LowRankRNNConfig",
    "LowRankSSM",
    "PiecewiseLinearRNN",
    "brute_force_fixed_points",
    "compare_variability",
    "find_fixed_points",
    "run_smc",
    "systematic_resample",
    "trial_variability",
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
    enc_init_std: float | None = None
    optimizer: str = "adam"
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


@dataclass
class Generated:
    """Trials sampled from the fitted generative model, at model steps (``factor`` data bins
    each): ``spikes`` and ``rates`` (trial, step, neuron), ``latents`` (trial, step, R)."""

    spikes: np.ndarray
    rates: np.ndarray
    latents: np.ndarray


def trial_variability(spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trial-to-trial variability of spike counts (trial, time, neuron) summed over the trial:
    per-neuron Fano factor var / mean (neuron,) (NaN for silent neurons) and the pairwise
    count correlations across trials (neuron pairs i < j, NaN where a neuron is constant)."""
    counts = np.asarray(spikes, dtype=np.float64).sum(axis=1)  # (trial, neuron)
    mean, var = counts.mean(0), counts.var(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        fano = np.where(mean > 0, var / mean, np.nan)
        centred = counts - mean
        sd = np.sqrt((centred**2).sum(0))
        corr = (centred.T @ centred) / np.outer(sd, sd)
    i, j = np.triu_indices(counts.shape[1], k=1)
    return fano, corr[i, j]


def compare_variability(generated: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """The paper's check that generated trials match the data's trial-to-trial variability:
    Fano factors and pairwise count correlations (:func:`trial_variability`) of generated and
    real trials (trial, time, neuron; same neurons and window) summarised as medians and the
    Pearson correlation between the generated and real values across neurons / pairs."""
    fano_g, corr_g = trial_variability(generated)
    fano_r, corr_r = trial_variability(real)

    def pearson(a: np.ndarray, b: np.ndarray) -> float:
        ok = np.isfinite(a) & np.isfinite(b)
        return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")

    return {
        "fano_median_generated": float(np.nanmedian(fano_g)),
        "fano_median_real": float(np.nanmedian(fano_r)),
        "fano_pearson": pearson(fano_g, fano_r),
        "corr_median_generated": float(np.nanmedian(corr_g)),
        "corr_median_real": float(np.nanmedian(corr_r)),
        "corr_pearson": pearson(corr_g, corr_r),
    }


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
        # Rank 16: on MC_Maze_Small val at 5 ms (seed 0) it scored 0.2042 against rank 8's
        # 0.1581 at the same fit time (~1200 s on one core); smoothed posteriors scored lower.
        "cpu": {"link": "exp", "rank": 16},
        # CI (the GitHub workflow runs it on Lorenz; target >= 90% of the true-rate ceiling,
        # fit <= 60 s): 40 ms model steps (two Lorenz bins), 64 units, 4 particles, batch 128,
        # 400 updates decaying to lr 2e-3, the authors' encoder variance init. Chosen on Lorenz
        # val, 1-thread slot of a loaded 2-core machine: 320 updates (to lr 1e-3) gave 90.3 /
        # 90.0 / 86.2% over seeds 0-2 (fit 38-48 s); seed 2 at 360 / 400 / 440 updates: 87.7 /
        # 89.5 / 90.6% (52-56 s); 440 updates fitted in 58-62 s on a clean clone, at the limit;
        # 400 updates to lr 2e-3: 93.9 / 93.7 / 91.7% (lr 1.2e-2 to 1e-3: 90.8 / 89.8 / 87.4%;
        # 8 particles: 72 s, 90.6%; 32 units: 57 s, 88.1%; batch 64, lr 1.5e-2 or 2e-2: < 89%).
        # The leaner particle filter step (fewer tensor ops; same bound to float rounding)
        # then fitted seed 0 in 44 s against 58 s before, side by side, same co-bps.
        "ci": {
            "link": "exp",
            "bin_ms": 40,
            "n_units": 64,
            "n_particles": 4,
            "batch_size": 128,
            "updates": 400,
            "lr": 1e-2,
            "lr_end": 2e-3,
            "enc_init_std": 0.05,
            "n_evals": 4,
            "predict_particles": 32,
        },
        "paper": {
            "nonlinearity": "relu_diff",
            "enc_init_std": 0.05,
            "optimizer": "radam",
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
            c.nonlinearity in ("relu_diff", "clipped_relu", "relu"),
            f"nonlinearity '{c.nonlinearity}': expected relu_diff, clipped_relu or relu",
        )
        require(
            c.optimizer in ("adam", "radam"), f"optimizer '{c.optimizer}': expected adam or radam"
        )
        require(
            c.enc_init_std is None or c.enc_init_std > 0,
            f"enc_init_std {c.enc_init_std!r}: expected a positive standard deviation or None",
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
        """Posterior mean latent trajectories (trial, data bin, R) of held-in spikes (trial,
        data bin, neuron): per model step, linearly interpolated to the data bins."""
        from baselines.lowrank_rnn import network

        seed = self.seed + 3 if seed is None else seed
        steps = coarsen(np.asarray(heldin, dtype=np.float32), self.factor)
        return refine(network.posterior(self, steps, seed, 0)[0], self.factor) * self.factor

    @fixed_threads
    def generate(
        self, n_trials: int, n_steps: int | None = None, seed: int | None = None
    ) -> Generated:
        """Sample ``n_trials`` trials from the fitted stochastic model (z_0 from the learned
        prior, transition noise, Poisson spikes) at model steps (``self.factor`` data bins
        each); ``n_steps`` defaults to the fitted window (observed + forward). The model has
        no inputs, so there is no condition to set: trials differ by their noise only."""
        require(hasattr(self, "model"), "lowrank_rnn: the model is not fitted")
        require(n_trials >= 1, f"n_trials {n_trials}: expected at least 1")
        from baselines.lowrank_rnn import network

        steps = self.n_bins + self.n_forward if n_steps is None else n_steps
        return network.generate(self, n_trials, steps, self.seed + 11 if seed is None else seed)

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
