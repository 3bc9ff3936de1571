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
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from baselines.lowrank_rnn.fixed_points import PiecewiseLinearRNN
from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo, fixed_threads, resolve_device
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import require

LOG_2PI = math.log(2 * math.pi)
MIN_LOG_VAR, MAX_LOG_VAR = math.log(1e-6), math.log(100.0)


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


# ----------------------------------------------------------------------------------------
# Torch modules
# ----------------------------------------------------------------------------------------


class _Pad(nn.Module):
    def __init__(self, left: int, right: int) -> None:
        super().__init__()
        self.left, self.right = left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, (self.left, self.right))


def _padding(kernel: int, mode: str) -> tuple[int, int]:
    """(left, right) zero padding that keeps the length: causal sees the past, acausal the
    future, centered both."""
    if mode == "causal":
        return kernel - 1, 0
    if mode == "acausal":
        return 0, kernel - 1
    return kernel // 2, kernel - 1 - kernel // 2


class ConvEncoder(nn.Module):
    """Held-in spikes (trial, time, neuron) -> Gaussian pseudo-observation of z per bin:
    mean and log-variance, each (trial, time, R)."""

    def __init__(self, n_in: int, rank: int, channels: int, kernels: tuple[int, ...], mode: str):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for k in kernels[:-1]:
            layers += [_Pad(*_padding(k, mode)), nn.Conv1d(width, channels, k), nn.GELU()]
            width = channels
        layers += [_Pad(*_padding(kernels[-1], mode)), nn.Conv1d(width, 2 * rank, kernels[-1])]
        self.net = nn.Sequential(*layers)
        self.rank = rank

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(torch.log1p(spikes).transpose(1, 2)).transpose(1, 2)
        mean, log_var = out[..., : self.rank], out[..., self.rank :]
        return mean, log_var.clamp(MIN_LOG_VAR, MAX_LOG_VAR)


class LowRankSSM(nn.Module):
    """The generative model and its encoder; shapes (trial, particle, dim)."""

    def __init__(
        self, cfg: LowRankRNNConfig, n_in: int, n_obs: int, mean_counts: np.ndarray
    ) -> None:
        super().__init__()
        r, u = cfg.rank, cfg.n_units
        self.nonlinearity, self.link = cfg.nonlinearity, cfg.link
        self.m = nn.Parameter((2 * torch.rand(u, r) - 1) / math.sqrt(r))
        self.n = nn.Parameter((2 * torch.rand(u, r) - 1) / math.sqrt(u))
        self.h = nn.Parameter(
            torch.rand(u) if cfg.nonlinearity == "clipped_relu" else torch.zeros(u)
        )
        self.decay_param = nn.Parameter(torch.tensor(math.log(-math.log(cfg.init_decay))))
        self.log_var = nn.Parameter(torch.full((r,), 2 * math.log(cfg.init_noise)))
        self.z0_mean = nn.Parameter(torch.zeros(r))
        self.z0_log_var = nn.Parameter(torch.full((r,), 2 * math.log(cfg.init_noise_t0)))
        self.readout = nn.Linear(r, n_obs)
        with torch.no_grad():
            self.readout.weight.normal_(0.0, math.sqrt(1.0 / r))
            mean = torch.as_tensor(np.maximum(mean_counts, 1e-3), dtype=torch.float32)
            bias = torch.log(mean) if cfg.link == "exp" else torch.log(torch.expm1(mean))
            self.readout.bias.copy_(bias)
        self.encoder = ConvEncoder(n_in, r, cfg.enc_channels, tuple(cfg.enc_kernels), cfg.encoder)

    @property
    def decay(self) -> torch.Tensor:
        return torch.exp(-torch.exp(self.decay_param))

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0.0, 1.0) if self.nonlinearity == "clipped_relu" else x.clamp_min(0.0)

    def transition(self, z: torch.Tensor) -> torch.Tensor:
        """Noise-free step, z (..., R) -> (..., R)."""
        return self.decay * z + self.phi(z @ self.m.T + self.h) @ self.n

    def rates(self, z: torch.Tensor) -> torch.Tensor:
        """Expected counts per bin (..., neuron)."""
        x = self.readout(z)
        return torch.exp(x) + 1e-8 if self.link == "exp" else nn.functional.softplus(x) + 1e-6


def _gauss_logpdf(z: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    return -0.5 * (((z - mean) ** 2) / var + torch.log(var) + LOG_2PI).sum(-1)


def systematic_resample(log_w: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Ancestor indices (trial, K) by systematic resampling of log-weights (trial, K)."""
    n_trials, k = log_w.shape
    cdf = torch.cumsum(torch.softmax(log_w.detach().double(), dim=1), dim=1)
    cdf[:, -1] = 1.0
    u = (
        torch.rand(n_trials, 1, generator=gen, device=log_w.device, dtype=cdf.dtype)
        + torch.arange(k, device=log_w.device, dtype=cdf.dtype)
    ) / k
    return torch.searchsorted(cdf, u).clamp_max(k - 1)


@dataclass
class SMCResult:
    """Per trial: ``bound`` (trial,) the VSMC log-likelihood bound; with ``keep``: particles
    (time, trial, K, R), log-weights (time, trial, K) and ancestors (time, trial, K)."""

    bound: torch.Tensor
    particles: list[torch.Tensor]
    log_weights: list[torch.Tensor]
    ancestors: list[torch.Tensor]


def run_smc(
    model: LowRankSSM,
    enc_spikes: torch.Tensor,
    obs: torch.Tensor,
    mask: torch.Tensor,
    n_particles: int,
    gen: torch.Generator,
    proposal: str = "encoder",
    keep: bool = False,
) -> SMCResult:
    """Variational SMC over ``obs`` (trial, time, neuron) with observed-entry ``mask``;
    the encoder sees ``enc_spikes`` (trial, T_enc, heldin), T_enc <= time (later steps use
    the transition as proposal)."""
    n_trials, n_time, _ = obs.shape
    k, r = n_particles, model.m.shape[1]
    var, var0 = torch.exp(model.log_var), torch.exp(model.z0_log_var)
    if proposal == "encoder":
        enc_mean, enc_log_var = model.encoder(enc_spikes)
    n_enc = enc_spikes.shape[1] if proposal == "encoder" else 0
    const = torch.lgamma(obs + 1.0) * mask
    bound = torch.zeros(n_trials, device=obs.device)
    out = SMCResult(bound, [], [], [])
    z = log_w = None
    for t in range(n_time):
        if t == 0:
            prior_mean = model.z0_mean.expand(n_trials, k, r)
            prior_var = var0
        else:
            idx = systematic_resample(log_w, gen)
            if keep:
                out.ancestors.append(idx)
            z = torch.gather(z, 1, idx[:, :, None].expand(-1, -1, r))
            prior_mean = model.transition(z)
            prior_var = var
        eps = torch.randn(n_trials, k, r, generator=gen, device=obs.device)
        if t < n_enc:
            e_var = torch.exp(enc_log_var[:, t])[:, None]
            q_var = 1.0 / (1.0 / prior_var + 1.0 / e_var)
            q_mean = q_var * (prior_mean / prior_var + enc_mean[:, t][:, None] / e_var)
            z = q_mean + torch.sqrt(q_var) * eps
            log_w = _gauss_logpdf(z, prior_mean, prior_var) - _gauss_logpdf(z, q_mean, q_var)
        else:
            z = prior_mean + torch.sqrt(prior_var) * eps
            log_w = torch.zeros(n_trials, k, device=obs.device)
        rate = model.rates(z)
        x_t, m_t = obs[:, t][:, None], mask[:, t][:, None]
        log_w = (
            log_w + ((x_t * torch.log(rate) - rate) * m_t).sum(-1) - const[:, t].sum(-1)[:, None]
        )
        bound = bound + torch.logsumexp(log_w, dim=1) - math.log(k)
        if keep:
            out.particles.append(z.detach())
            out.log_weights.append(log_w.detach())
    out.bound = bound
    return out


def backward_smooth(model: LowRankSSM, res: SMCResult, gen: torch.Generator) -> list[torch.Tensor]:
    """Backward simulation (FFBSi): K smoothed trajectories from the filter's particles,
    each a list over time of (trial, K, R)."""
    var = torch.exp(model.log_var)
    n_time = len(res.particles)
    n_trials, k, r = res.particles[-1].shape
    idx = systematic_resample(res.log_weights[-1], gen)
    z_next = torch.gather(res.particles[-1], 1, idx[:, :, None].expand(-1, -1, r))
    out = [z_next]
    for t in range(n_time - 2, -1, -1):
        z_t = res.particles[t]  # (trial, K, R): candidates i
        pred = model.transition(z_t)  # (trial, K_i, R)
        # log p(z_{t+1}^j | z_t^i) + log w_t^i: (trial, K_j, K_i)
        trans = -0.5 * (((z_next[:, :, None] - pred[:, None]) ** 2) / var).sum(-1)
        logits = trans + res.log_weights[t][:, None, :]
        pick = torch.multinomial(
            torch.softmax(logits.reshape(-1, k).double(), dim=1), 1, generator=gen
        ).reshape(n_trials, k)
        z_next = torch.gather(z_t, 1, pick[:, :, None].expand(-1, -1, r))
        out.append(z_next)
    return out[::-1]


# ----------------------------------------------------------------------------------------
# Adapter
# ----------------------------------------------------------------------------------------


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

    # -- fit ------------------------------------------------------------------------------

    @fixed_threads
    def fit(self, data: PhaseData) -> None:
        self._check_config()
        cfg = self.cfg
        device = torch.device(resolve_device(cfg.device))
        torch.manual_seed(self.seed)
        gen = torch.Generator(device=device).manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.factor = bin_factor(cfg.bin_ms, data.bin_width_ms, data.n_bins, data.n_forward)
        full = coarsen(data.train_spikes_full(), self.factor).astype(np.float32)
        n_train, n_time, n_obs = full.shape  # (trial, model steps incl. forward, neuron)
        n_in, n_bins = data.n_heldin, data.n_bins // self.factor
        self.n_heldin, self.n_bins, self.n_forward = n_in, n_bins, n_time - n_bins

        # Validation trials (best epoch by held-out-neuron likelihood) and the fit set.
        n_val = round(cfg.val_fraction * n_train) if n_train >= 10 else 0
        perm = rng.permutation(n_train)
        val, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        obs = [full[fit_idx]]
        mask = [np.ones_like(full[fit_idx])]
        if cfg.train_on_eval_heldin:
            ev = coarsen(data.eval_spikes_heldin, self.factor).astype(np.float32)
            pad = np.zeros((ev.shape[0], n_time, n_obs), np.float32)
            pad[:, :n_bins, :n_in] = ev
            m_ev = np.zeros_like(pad)
            m_ev[:, :n_bins, :n_in] = 1.0
            obs.append(pad)
            mask.append(m_ev)
        obs_t = torch.as_tensor(np.concatenate(obs), device=device)
        mask_t = torch.as_tensor(np.concatenate(mask), device=device)
        enc_t = obs_t[:, :n_bins, :n_in].contiguous()
        mean_counts = full[fit_idx].mean(axis=(0, 1))

        self.model = LowRankSSM(cfg, n_in, n_obs, mean_counts).to(device)
        opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        n_fit = obs_t.shape[0]
        n_batches = -(-n_fit // cfg.batch_size)
        n_epochs = max(1, -(-cfg.updates // n_batches))
        eval_at = set(np.linspace(n_epochs, 0, max(1, cfg.n_evals), endpoint=False).astype(int))
        gamma = (cfg.lr_end / cfg.lr) ** (1.0 / (n_epochs * n_batches)) if cfg.lr_end > 0 else 1.0
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
        self.history: list[float] = []
        self.val_history: list[tuple[int, float]] = []
        best_score, best_state = -np.inf, None
        bar = tqdm(range(n_epochs), desc="lowrank_rnn", leave=False, disable=None)
        for epoch in bar:
            self.model.train()
            order = torch.randperm(n_fit, generator=gen, device=device)
            total, count = 0.0, 0.0
            for s in range(0, n_fit, cfg.batch_size):
                b = order[s : s + cfg.batch_size]
                res = run_smc(
                    self.model, enc_t[b], obs_t[b], mask_t[b], cfg.n_particles, gen, cfg.proposal
                )
                n_entries = mask_t[b].sum()
                loss = -res.bound.sum() / n_entries
                opt.zero_grad()
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                total += float(loss.detach()) * float(n_entries)
                count += float(n_entries)
            self.history.append(total / count)
            if n_val and epoch + 1 in eval_at:
                score = self._val_score(full[val], device)
                self.val_history.append((epoch + 1, score))
                if score > best_score:
                    best_score, best_state = score, copy.deepcopy(self.model.state_dict())
            bar.set_postfix(loss=f"{self.history[-1]:.4f}")
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        self.example_latents = self.latents(data.train_spikes_heldin[:64])  # (trial, step, R)

    def _val_score(self, val_full: np.ndarray, device: torch.device) -> float:
        """Mean Poisson log-likelihood per held-out-neuron count on validation trials, their
        rates inferred from held-in spikes only (higher is better)."""
        n_in, n_bins = self.n_heldin, self.n_bins
        rates = self._infer(val_full[:, :n_bins, :n_in], n_repeats=1, seed=self.seed + 7919)
        spikes = val_full[:, :n_bins, n_in:]
        pred = rates[:, :n_bins, n_in:]
        return float(np.mean(spikes * np.log(pred) - pred))

    # -- inference ------------------------------------------------------------------------

    @torch.no_grad()
    def _posterior(
        self, heldin: np.ndarray, seed: int, n_forward: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean latents (trial, T + F, R) and rates (trial, T + F, neuron) from
        held-in spikes (trial, T, heldin), one SMC run."""
        cfg = self.cfg
        model = self.model
        device = model.m.device
        gen = torch.Generator(device=device).manual_seed(int(seed))
        n_trials, n_bins, n_in = heldin.shape
        n_obs = model.readout.out_features
        lat_out, rate_out = [], []
        chunk = max(1, 8192 // cfg.predict_particles)
        for s in range(0, n_trials, chunk):
            x = torch.as_tensor(heldin[s : s + chunk], dtype=torch.float32, device=device)
            n = x.shape[0]
            obs = torch.zeros(n, n_bins + n_forward, n_obs, device=device)
            mask = torch.zeros_like(obs)
            obs[:, :n_bins, :n_in] = x
            mask[:, :n_bins, :n_in] = 1.0
            res = run_smc(model, x, obs, mask, cfg.predict_particles, gen, cfg.proposal, keep=True)
            if cfg.posterior == "smooth":
                # Smooth the observed window; the forward window continues from it.
                res_obs = SMCResult(res.bound, res.particles[:n_bins], res.log_weights[:n_bins], [])
                paths = backward_smooth(model, res_obs, gen)
                lat = [p.mean(1) for p in paths]
                rate = [model.rates(p).mean(1) for p in paths]
                for t in range(n_bins, n_bins + n_forward):
                    w = torch.softmax(res.log_weights[t], dim=1)[:, :, None]
                    lat.append((w * res.particles[t]).sum(1))
                    rate.append((w * model.rates(res.particles[t])).sum(1))
            else:
                lat, rate = [], []
                for z, lw in zip(res.particles, res.log_weights, strict=True):
                    w = torch.softmax(lw, dim=1)[:, :, None]
                    lat.append((w * z).sum(1))
                    rate.append((w * model.rates(z)).sum(1))
            lat_out.append(torch.stack(lat, 1).cpu().numpy())
            rate_out.append(torch.stack(rate, 1).cpu().numpy())
        return np.concatenate(lat_out), np.concatenate(rate_out)

    def _infer(
        self, heldin: np.ndarray, n_repeats: int, seed: int, n_forward: int = 0
    ) -> np.ndarray:
        """Rates (trial, T + F, neuron) averaged over ``n_repeats`` SMC runs."""
        total = None
        for i in range(n_repeats):
            rates = self._posterior(heldin, seed + 1000 * i, n_forward)[1].astype(np.float64)
            total = rates if total is None else total + rates
        assert total is not None
        return total / n_repeats

    @fixed_threads
    def predict(self, data: PhaseData) -> Rates:
        require(hasattr(self, "model"), "lowrank_rnn: call fit() before predict()")
        f = self.factor
        n_fwd = data.n_forward // f
        reps = max(1, self.cfg.n_samples)
        train_in = coarsen(data.train_spikes_heldin, f)
        eval_in = coarsen(data.eval_spikes_heldin, f)
        train = refine(self._infer(train_in, reps, self.seed + 1, n_fwd), f)
        evals = refine(self._infer(eval_in, reps, self.seed + 2, n_fwd), f)
        return Rates.from_full(train, evals, data.n_heldin, data.n_bins)

    def latents(self, heldin: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Posterior mean latent trajectories (trial, model step, R) of held-in spikes
        (trial, data bin, neuron)."""
        seed = self.seed + 3 if seed is None else seed
        steps = coarsen(np.asarray(heldin, dtype=np.float32), self.factor)
        return self._posterior(steps, seed, 0)[0]

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
