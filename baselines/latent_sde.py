"""Latent SDE with coupled-oscillator dynamics, after ElGazzar & van Gerven, "Generative
Modeling of Neural Dynamics via Latent Stochastic Differential Equations" (arXiv 2412.12112).

Generative model (prior), for ``n`` oscillators with positions x and velocities v::

    x'' = -gamma x' - omega^2 x + K x  [+ MLP(x, v) for "hybrid"]      (drift "oscillator"/"hybrid")
    dz  = MLP(z) dt                                                    (drift "neural")
    dz  = drift dt + sigma dW,   log rates = W z + b,   spikes ~ Poisson(exp(log rates))

``omega``, ``gamma`` (per oscillator, positive) and the coupling ``K`` are learned; the
velocity is stored divided by ``omega`` so both halves of the state have the same scale.
``sigma`` is a learned diagonal diffusion shared by prior and posterior.

Inference (posterior): a bidirectional GRU over held-in spikes gives the initial-state
posterior q(z0) and a context sequence; the posterior drift is the prior drift plus an MLP
correction over [state, context]. The ELBO is the Poisson log-likelihood of all neurons minus
KL(q(z0) || p(z0)) minus the path KL (Girsanov, torchsde's ``logqp``), with linear KL
annealing, integrated by fixed-step Euler–Maruyama. Over the forward window (no data) the
posterior drift equals the prior drift, so forward predictions are prior rollouts.

The solver is Heun (Stratonovich; the noise is additive, so this is the same SDE as Itô):
Euler–Maruyama, also available, amplifies undamped oscillations by sqrt(1 + (omega dt)^2)
per step and diverges at 20 ms steps. Time is measured in solver steps (``dt_ms`` rounded
so that a bin is a whole number of steps, or a step a power of two of bins), so every solver
time is an exact float and torchsde's Brownian interval, built with the known ``dt``, never
splits needlessly (the default one with float32 bin times is ~20-30x slower). Prediction = mean over ``n_samples`` posterior samples; :meth:`LatentSDE.
predict_intervals` gives per-bin predictive intervals of the rates.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torchsde
from torch import nn
from tqdm.auto import tqdm

from nlbsuite.adapter import (
    ModelAdapter,
    ModelConfig,
    ModelInfo,
    fixed_threads,
    resolve_device,
    seed_everything,
)
from nlbsuite.data import GroundTruth, PhaseData, Rates
from nlbsuite.errors import require

DRIFTS = ("oscillator", "hybrid", "neural")
METHODS = ("heun", "midpoint", "euler")


@dataclass
class LatentSDEConfig(ModelConfig):
    """Hyperparameters. Sizes: ``n_oscillators`` (state dim = 2x), GRU ``encoder_hidden`` per
    direction, ``context_dim``, posterior MLP ``posterior_hidden``; ``hybrid_hidden`` /
    ``neural_hidden`` x ``neural_layers`` size the hybrid term / neural drift.
    ``dt_ms``: solver step (rounded to divide the bin; None: one step per bin). The batch is ``batch_size`` trials,
    smaller if needed for ``min_steps_per_epoch`` optimizer steps per epoch (small datasets). ``use_eval_heldin``: also fit the
    held-in spikes of eval trials (allowed by NLB). ``behavior_weight`` > 0 adds a Gaussian
    behaviour head on train behaviour. The KL weight ramps linearly from ``kl_start`` to
    ``kl_weight`` over ``kl_warmup_epochs``. ``num_threads``: torch CPU threads in fit and
    predict (0: torch's default); a fixed count gives the same numbers on every machine."""

    drift: str = "hybrid"
    n_oscillators: int = 8
    encoder_hidden: int = 32
    context_dim: int = 16
    posterior_hidden: int = 64
    hybrid_hidden: int = 16
    neural_hidden: int = 256
    neural_layers: int = 2
    omega_hz: tuple[float, float] = (0.5, 4.0)
    init_sigma: float = 0.1
    dt_ms: float | None = 20.0
    method: str = "heun"
    epochs: int = 80
    batch_size: int = 128
    min_steps_per_epoch: int = 6
    lr: float = 5e-3
    lr_final_fraction: float = 0.05
    weight_decay: float = 1e-4
    dropout: float = 0.1
    kl_start: float = 0.0
    kl_warmup_epochs: int = 30
    kl_weight: float = 1.0
    grad_clip: float = 10.0
    val_fraction: float = 0.1
    eval_every: int = 5
    val_samples: int = 4
    use_eval_heldin: bool = True
    behavior_weight: float = 0.0
    n_samples: int = 20
    predict_batch: int = 256
    num_threads: int = 1


def steps_per_bin(bin_ms: float, dt_ms: float) -> float:
    """Solver steps per bin: the nearest whole number when the bin is at least ``dt_ms``,
    else 1/2^k (a step spans a power of two of bins), so solver times stay exact floats."""
    if bin_ms >= dt_ms:
        return float(max(1, round(bin_ms / dt_ms)))
    return 1.0 / 2 ** max(0, round(math.log2(dt_ms / bin_ms)))


def check_config(cfg: LatentSDEConfig) -> None:
    """UserError naming the first config field with an unusable value."""
    require(cfg.drift in DRIFTS, f"config drift '{cfg.drift}': expected one of {DRIFTS}")
    require(cfg.method in METHODS, f"config method '{cfg.method}': expected one of {METHODS}")
    omega = cfg.omega_hz
    require(
        isinstance(omega, (tuple, list))
        and len(omega) == 2
        and all(isinstance(w, (int, float)) for w in omega)
        and 0 < omega[0] <= omega[1],
        f"config omega_hz={omega!r}: expected two frequencies in Hz, 0 < low <= high",
    )
    positive_ints = (
        "n_oscillators encoder_hidden context_dim posterior_hidden neural_hidden neural_layers "
        "epochs batch_size min_steps_per_epoch eval_every val_samples n_samples predict_batch"
    )
    for name in positive_ints.split():
        value = getattr(cfg, name)
        require(
            isinstance(value, int) and value >= 1,
            f"config {name}={value!r}: expected a positive integer",
        )
    require(
        isinstance(cfg.hybrid_hidden, int) and cfg.hybrid_hidden >= 0,
        f"config hybrid_hidden={cfg.hybrid_hidden!r}: expected an integer >= 0",
    )
    ranges = {
        "lr": (0.0, math.inf, False),
        "init_sigma": (0.0, math.inf, False),
        "grad_clip": (0.0, math.inf, False),
        "dropout": (0.0, 1.0, True),
        "val_fraction": (0.0, 1.0, True),
        "kl_start": (0.0, 1.0, True),
        "kl_weight": (0.0, math.inf, True),
        "weight_decay": (0.0, math.inf, True),
        "behavior_weight": (0.0, math.inf, True),
        "lr_final_fraction": (0.0, 1.0, True),
    }
    for name, (low, high, low_ok) in ranges.items():
        value = getattr(cfg, name)
        ok = isinstance(value, (int, float)) and (value >= low if low_ok else value > low)
        require(
            ok and value <= high,
            f"config {name}={value!r}: expected a number in {'[' if low_ok else '('}{low}, {high}]",
        )
    require(
        cfg.dt_ms is None or (isinstance(cfg.dt_ms, (int, float)) and cfg.dt_ms > 0),
        f"config dt_ms={cfg.dt_ms!r}: expected a positive step in ms or None (one per bin)",
    )


# ----------------------------------------------------------------------------------------
# Torch modules
# ----------------------------------------------------------------------------------------


def mlp(
    n_in: int, hidden: int, n_out: int, layers: int = 1, out_scale: float = 0.1
) -> nn.Sequential:
    """``layers`` hidden tanh layers of width ``hidden``; the last layer starts small."""
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    last = nn.Linear(width, n_out)
    with torch.no_grad():
        last.weight.mul_(out_scale)
        last.bias.zero_()
    return nn.Sequential(*mods, last)


class OscillatorDrift(nn.Module):
    """Coupled damped oscillators (+ an optional small MLP acceleration term, "hybrid").

    State z = [x, v / omega] (batch, 2n); rates per solver step (``step_s`` seconds).
    """

    def __init__(
        self, n: int, step_s: float, omega_hz: tuple[float, float], hybrid_hidden: int = 0
    ) -> None:
        super().__init__()
        self.n, self.step_s = n, step_s
        omega = 2 * math.pi * torch.linspace(omega_hz[0], omega_hz[1], n)
        self.log_omega = nn.Parameter(omega.log())  # rad/s
        self.raw_gamma = nn.Parameter(torch.full((n,), math.log(math.expm1(1.0))))  # 1/s
        self.coupling = nn.Parameter(torch.zeros(n, n))  # 1/s^2
        self.extra = mlp(2 * n, hybrid_hidden, n) if hybrid_hidden > 0 else None

    def omega(self) -> torch.Tensor:
        return self.log_omega.exp()

    def gamma(self) -> torch.Tensor:
        return nn.functional.softplus(self.raw_gamma)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x, u = z[:, : self.n], z[:, self.n :]  # u = v / omega
        omega, dt = self.omega(), self.step_s
        v = u * omega
        accel = -self.gamma() * v - omega**2 * x + x @ self.coupling.T  # x'' in 1/s^2
        du = dt * accel / omega
        if self.extra is not None:
            du = du + self.extra(z)
        return torch.cat([dt * v, du], dim=1)


class LatentSDEModule(nn.Module):
    """Encoder, prior/posterior SDE (torchsde interface: ``f``, ``g``, ``h``) and readouts."""

    noise_type = "diagonal"
    sde_type = "stratonovich"  # "ito" for method "euler"; the same SDE (additive noise)

    def __init__(
        self,
        cfg: LatentSDEConfig,
        n_heldin: int,
        n_neurons: int,
        step_s: float,
        n_behavior: int = 0,
    ) -> None:
        super().__init__()
        n, d = cfg.n_oscillators, 2 * cfg.n_oscillators
        self.state_dim = d
        self.method = cfg.method
        self.sde_type = "ito" if cfg.method == "euler" else "stratonovich"
        self.encoder = nn.GRU(n_heldin, cfg.encoder_hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.to_context = nn.Linear(2 * cfg.encoder_hidden, cfg.context_dim)
        self.to_z0 = nn.Linear(2 * cfg.encoder_hidden, 2 * d)
        self.prior_z0_mean = nn.Parameter(torch.zeros(d))
        self.prior_z0_logvar = nn.Parameter(torch.zeros(d))
        if cfg.drift == "neural":
            self.prior_drift: nn.Module = mlp(d, cfg.neural_hidden, d, layers=cfg.neural_layers)
        else:
            hidden = cfg.hybrid_hidden if cfg.drift == "hybrid" else 0
            self.prior_drift = OscillatorDrift(n, step_s, cfg.omega_hz, hidden)
        self.posterior_net = mlp(d + cfg.context_dim, cfg.posterior_hidden, d)
        self.log_sigma = nn.Parameter(torch.full((d,), math.log(cfg.init_sigma)))
        self.readout = nn.Linear(d, n_neurons)
        self.behavior = nn.Linear(d, n_behavior) if n_behavior else None
        self.behavior_logstd = nn.Parameter(torch.zeros(n_behavior)) if n_behavior else None
        # Set per batch by `run`: context (batch, slot, ctx) with one slot per bin (or per
        # step when a step spans several bins), solver steps per bin, observed bins.
        self._context: torch.Tensor | None = None
        self._steps_per_bin = 1.0
        self._n_obs = 0
        self._h_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- torchsde interface (t in solver steps) --------------------------------------------
    def h(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Prior drift. Cached per state tensor: ``logqp`` calls f then h on the same ``y``."""
        if self._h_cache is not None and self._h_cache[0] is y:
            return self._h_cache[1]
        out = self.prior_drift(y)
        self._h_cache = (y, out)
        return out

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Posterior drift: prior drift + MLP([state, context]); the prior alone after the data."""
        prior = self.h(t, y)
        step = float(t)
        if self._context is None or step >= self._n_obs * self._steps_per_bin:
            return prior
        ctx = self._context[:, int(step // max(1.0, self._steps_per_bin))]
        return prior + self.posterior_net(torch.cat([y, ctx], dim=1))

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.log_sigma.exp().expand_as(y)

    # -- model ---------------------------------------------------------------------------
    def encode(self, heldin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Held-in counts (batch, bin, neuron) -> q(z0) mean, logvar (batch, d), context."""
        out, _ = self.encoder(self.dropout(torch.log1p(heldin)))  # (batch, bin, 2 hidden)
        half = out.shape[2] // 2
        summary = torch.cat([out[:, -1, :half], out[:, 0, half:]], dim=1)
        mean, logvar = self.to_z0(self.dropout(summary)).chunk(2, dim=1)
        return mean, logvar.clamp(-10.0, 5.0), self.to_context(self.dropout(out))

    def run(
        self,
        heldin: torch.Tensor,
        n_total_bins: int,
        steps_per_bin: float,
        entropy: int,
        generator: torch.Generator,
        n_samples: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample latent paths: (bin, batch * n_samples, d) states, KL(z0) and path KL per path.

        Rows are sample-major within a trial: trial i's samples are rows i*S .. i*S+S-1.
        ``steps_per_bin``: a whole number, or 1/2^k when one step spans 2^k bins (states at
        the bins inside a step are torchsde's linear interpolation; the context is averaged
        over the step's bins).
        """
        mean, logvar, context = self.encode(heldin)
        if steps_per_bin < 1:
            k = round(1 / steps_per_bin)
            context = nn.functional.avg_pool1d(
                context.transpose(1, 2), k, ceil_mode=True
            ).transpose(1, 2)
        if n_samples > 1:
            mean, logvar, context = (
                a.repeat_interleave(n_samples, dim=0) for a in (mean, logvar, context)
            )
        eps = torch.randn(mean.shape, generator=generator, device=mean.device)
        z0 = mean + (0.5 * logvar).exp() * eps
        pm, plv = self.prior_z0_mean, self.prior_z0_logvar
        kl0 = 0.5 * (plv - logvar + (logvar.exp() + (mean - pm) ** 2) / plv.exp() - 1).sum(1)
        ts = torch.arange(n_total_bins, dtype=torch.float64, device=z0.device) * steps_per_bin
        bm = torchsde.BrownianInterval(
            t0=0.0,
            t1=float(ts[-1]),
            size=(z0.shape[0], self.state_dim + 1),
            dtype=z0.dtype,
            device=z0.device,
            entropy=entropy,
            dt=1.0,
            levy_area_approximation="none",
        )
        self._context, self._steps_per_bin, self._n_obs = context, steps_per_bin, heldin.shape[1]
        try:
            zs, log_ratio = torchsde.sdeint(
                self, z0, ts, bm=bm, method=self.method, dt=1.0, logqp=True
            )
        finally:
            self._context, self._h_cache = None, None
        return zs, kl0, log_ratio.sum(0)


# ----------------------------------------------------------------------------------------
# Adapter
# ----------------------------------------------------------------------------------------


@dataclass
class PredictiveIntervals:
    """Per-bin predictive intervals of the rates: ``mean``, ``lower``, ``upper`` are
    :class:`Rates` (same arrays as a prediction); ``level`` is the central probability."""

    mean: Rates
    lower: Rates
    upper: Rates
    level: float


def interval_coverage(intervals: PredictiveIntervals, truth: GroundTruth) -> float:
    """Fraction of true eval rates (held-in and held-out, observed window) inside the interval."""
    inside = []
    for key in ("eval_rates_heldin", "eval_rates_heldout"):
        true = getattr(truth, key)
        lo, hi = getattr(intervals.lower, key), getattr(intervals.upper, key)
        inside.append(((true >= lo) & (true <= hi)).ravel())
    return float(np.concatenate(inside).mean())


def predictive_interval(
    samples: np.ndarray, level: float, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval of ``samples`` along ``axis``: quantiles at Weibull plotting
    positions p (n + 1), so a new draw from the samples' distribution falls inside with
    probability ``level`` (linear interpolation covers only ~0.81 at n = 20, level 0.9)."""
    probs = [(1 - level) / 2, (1 + level) / 2]
    lower, upper = np.quantile(samples, probs, axis=axis, method="weibull")
    return lower, upper


class LatentSDE(ModelAdapter):
    """Latent SDE with coupled-oscillator / hybrid / neural drift (see module docstring)."""

    info = ModelInfo(
        name="latent_sde",
        citation="ElGazzar & van Gerven 2024, Generative Modeling of Neural Dynamics via "
        "Latent Stochastic Differential Equations (arXiv 2412.12112)",
        url="https://arxiv.org/abs/2412.12112",
        stochastic=True,
        description="latent SDE: coupled oscillators (+MLP) prior, GRU encoder, Poisson readout",
    )
    config_class = LatentSDEConfig
    presets: ClassVar = {
        "smoke": {
            "n_oscillators": 3,
            "encoder_hidden": 8,
            "context_dim": 4,
            "posterior_hidden": 16,
            "hybrid_hidden": 8,
            "neural_hidden": 16,
            "epochs": 8,
            "min_steps_per_epoch": 1,
            "batch_size": 40,
            "lr": 1e-2,
            "kl_warmup_epochs": 4,
            "eval_every": 3,
            "val_samples": 2,
            "n_samples": 4,
        },
        "cpu": {},
        # Sizes and optimiser of the authors' public MC_Maze example (NeuroDynamics.jl,
        # examples/mcmaze.jl): 10 latent states, context 32, posterior MLP 64, encoder RNN 32,
        # AdamW 1e-3, batch 64, KL weight ramped 0.5 -> 1 over half the run, diffusion 0.1,
        # 20 posterior samples, solver step = bin. The paper's epoch count is not stated there.
        "paper": {
            "n_oscillators": 5,
            "encoder_hidden": 32,
            "context_dim": 32,
            "posterior_hidden": 64,
            "lr": 1e-3,
            "batch_size": 64,
            "kl_start": 0.5,
            "kl_warmup_epochs": 150,
            "epochs": 300,
            "dt_ms": None,
            "n_samples": 20,
        },
    }

    # -- helpers -------------------------------------------------------------------------
    @property
    def cfg(self) -> LatentSDEConfig:
        assert isinstance(self.config, LatentSDEConfig)
        return self.config

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.array(a, dtype=np.float32), device=self._device)  # a copy

    def _targets(self, data: PhaseData) -> tuple[np.ndarray, np.ndarray]:
        """Held-in inputs (trial, bin, in) and targets (trial, bin+fwd, neuron) with NaN where
        unknown: train trials are fully known, eval trials only held-in observed bins."""
        full = data.train_spikes_full()
        inputs = [data.train_spikes_heldin]
        targets = [full]
        if self.cfg.use_eval_heldin:
            ev = np.full((data.eval_spikes_heldin.shape[0], *full.shape[1:]), np.nan)
            ev[:, : data.n_bins, : data.n_heldin] = data.eval_spikes_heldin
            inputs.append(data.eval_spikes_heldin)
            targets.append(ev)
        return np.concatenate(inputs), np.concatenate(targets)

    def _paths(
        self, heldin: torch.Tensor, n_total_bins: int, entropy: int, n_samples: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Latent paths (batch * S, bin, d), KL(z0) and path KL (batch * S,) for one batch."""
        zs, kl0, kl_path = self.module.run(
            heldin, n_total_bins, self._spb, entropy, self._gen, n_samples
        )
        return zs.transpose(0, 1), kl0, kl_path

    def _entropy(self) -> int:
        return int(self._rng.integers(2**31 - 1))

    # -- fit -----------------------------------------------------------------------------
    @fixed_threads
    def fit(self, data: PhaseData) -> None:
        cfg = self.cfg
        check_config(cfg)
        seed_everything(self.seed)
        self._device = resolve_device(cfg.device)
        self._spb = steps_per_bin(data.bin_width_ms, cfg.dt_ms or data.bin_width_ms)
        step_s = data.bin_width_ms / 1000.0 / self._spb
        behavior = data.train_behavior if cfg.behavior_weight > 0 else None
        if behavior is not None and behavior.ndim != 3:
            behavior = None
        n_beh = 0 if behavior is None else behavior.shape[2]
        n_neurons = data.n_heldin + data.n_heldout
        self.module = LatentSDEModule(cfg, data.n_heldin, n_neurons, step_s, n_beh).to(self._device)
        full = data.train_spikes_full()
        with torch.no_grad():
            self.module.readout.bias.copy_(
                self._tensor(np.log(np.maximum(full.mean(axis=(0, 1)), 1e-3)))
            )
        self._rng = np.random.default_rng(self.seed)
        self._gen = torch.Generator(device=self._device).manual_seed(self.seed)

        inputs, targets = self._targets(data)
        n_train = data.train_spikes_heldin.shape[0]
        n_val = max(1, round(cfg.val_fraction * n_train)) if n_train >= 10 else 0
        perm = self._rng.permutation(n_train)
        val_idx = np.sort(perm[:n_val])
        fit_idx = np.concatenate([np.sort(perm[n_val:]), np.arange(n_train, len(inputs))])
        x_all, y_all = self._tensor(inputs), self._tensor(targets)
        mask_all = torch.isfinite(y_all)
        y_all = torch.nan_to_num(y_all)
        beh = None if behavior is None else self._tensor(behavior)

        batch = min(cfg.batch_size, math.ceil(len(fit_idx) / cfg.min_steps_per_epoch))
        opt = torch.optim.AdamW(self.module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, cfg.epochs), eta_min=cfg.lr * cfg.lr_final_fraction
        )
        self.history: list[float] = []
        self.val_history: list[tuple[int, float]] = []
        best_val, best_state = math.inf, None
        for epoch in tqdm(range(cfg.epochs), desc="latent_sde", disable=None, leave=False):
            self.module.train()
            ramp = min(1.0, (epoch + 1) / max(1, cfg.kl_warmup_epochs))
            beta = cfg.kl_weight * (cfg.kl_start + (1.0 - cfg.kl_start) * ramp)
            order = self._rng.permutation(fit_idx)
            total, count = 0.0, 0
            for start in range(0, len(order), batch):
                idx = torch.as_tensor(order[start : start + batch], device=self._device)
                y, mask = y_all[idx], mask_all[idx]
                zs, kl0, kl_path = self._paths(x_all[idx], y.shape[1], self._entropy())
                log_rates = self.module.readout(zs)
                nll = torch.where(mask, log_rates.exp() - y * log_rates, 0.0).sum()
                n_obs = mask.sum().clamp_min(1)
                loss = (nll + beta * (kl0.sum() + kl_path.sum())) / n_obs
                if beh is not None:
                    loss = loss + cfg.behavior_weight * self._behavior_nll(zs, idx, beh)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.module.parameters(), cfg.grad_clip)
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            sched.step()
            self.history.append(total / max(count, 1))
            last = epoch == cfg.epochs - 1
            if n_val and ((epoch + 1) % cfg.eval_every == 0 or last):
                val = self._val_nll(x_all[val_idx], y_all[val_idx], data.n_bins, data.n_heldin)
                self.val_history.append((epoch, val))
                if val < best_val:
                    best_val, best_state = val, copy.deepcopy(self.module.state_dict())
        if best_state is not None:
            self.module.load_state_dict(best_state)
        self.module.eval()

    def _behavior_nll(self, zs: torch.Tensor, idx: torch.Tensor, beh: torch.Tensor) -> torch.Tensor:
        """Mean Gaussian NLL of the behaviour head over the batch's train trials (observed bins).

        ``zs``: (batch, bin, d); ``beh``: (train trial, bin, dim); eval trials have none."""
        head, logstd = self.module.behavior, self.module.behavior_logstd
        assert head is not None and logstd is not None
        is_train = idx < beh.shape[0]
        if not bool(is_train.any()):
            return zs.new_zeros(())
        target = beh[idx[is_train]]
        pred = head(zs[is_train][:, : target.shape[1]])
        return (logstd + 0.5 * ((target - pred) / logstd.exp()) ** 2).mean()

    @torch.no_grad()
    def _val_nll(self, x: torch.Tensor, y: torch.Tensor, n_bins: int, n_heldin: int) -> float:
        """Poisson NLL per held-out observed / forward target of the sample-mean rates."""
        self.module.eval()
        s = self.cfg.val_samples
        gen_state = self._gen.get_state()
        self._gen.manual_seed(self.seed + 1)
        zs, _, _ = self._paths(x, y.shape[1], self.seed + 1, n_samples=s)
        self._gen.set_state(gen_state)
        log_rates = self.module.readout(zs)
        rates = log_rates.exp().reshape(x.shape[0], s, *log_rates.shape[1:]).mean(1)
        keep = torch.ones_like(y, dtype=torch.bool)
        keep[:, :n_bins, :n_heldin] = False
        nll = (rates - y * rates.log())[keep]
        return float(nll.mean())

    # -- predict -------------------------------------------------------------------------
    @torch.no_grad()
    def _sample_rates(self, heldin: np.ndarray, n_total_bins: int, n_samples: int, part: int):
        """Yield (trial slice, rates (trial, sample, bin, neuron)) in chunks, deterministically."""
        self.module.eval()
        gen = torch.Generator(device=self._device).manual_seed(self.seed + 1000 * part)
        per = max(1, self.cfg.predict_batch // max(1, n_samples))
        for chunk, start in enumerate(range(0, heldin.shape[0], per)):
            x = self._tensor(heldin[start : start + per])
            entropy = self.seed + 7919 * (chunk + 1) + part
            zs, _, _ = self.module.run(x, n_total_bins, self._spb, entropy, gen, n_samples)
            rates = self.module.readout(zs).exp().transpose(0, 1)
            yield (
                slice(start, start + x.shape[0]),
                rates.reshape(x.shape[0], n_samples, n_total_bins, -1)
                .cpu()
                .numpy()
                .astype(np.float64),
            )

    def _summaries(self, data: PhaseData, level: float | None) -> dict[str, tuple[np.ndarray, ...]]:
        """Per part ("train", "eval"): mean (and lower, upper if ``level``) rate arrays."""
        n_total = data.n_bins + data.n_forward
        out = {}
        for part, (name, heldin) in enumerate(
            (("train", data.train_spikes_heldin), ("eval", data.eval_spikes_heldin))
        ):
            arrays = [np.empty((heldin.shape[0], n_total, self.module.readout.out_features))]
            if level is not None:
                arrays += [np.empty_like(arrays[0]), np.empty_like(arrays[0])]
            for sl, rates in self._sample_rates(heldin, n_total, self.cfg.n_samples, part):
                arrays[0][sl] = rates.mean(axis=1)
                if level is not None:
                    arrays[1][sl], arrays[2][sl] = predictive_interval(rates, level, axis=1)
            out[name] = tuple(arrays)
        return out

    @fixed_threads
    def predict(self, data: PhaseData) -> Rates:
        s = self._summaries(data, None)
        return Rates.from_full(s["train"][0], s["eval"][0], data.n_heldin, data.n_bins)

    @fixed_threads
    def predict_intervals(self, data: PhaseData, level: float = 0.9) -> PredictiveIntervals:
        """Sample-mean rates and central ``level`` intervals over ``n_samples`` posterior paths.
        See :func:`predictive_interval` for how the interval ends are placed.
        """
        require(0 < level < 1, f"level {level}: expected a probability in (0, 1)")
        s = self._summaries(data, level)
        rates = [
            Rates.from_full(s["train"][i], s["eval"][i], data.n_heldin, data.n_bins)
            for i in range(3)
        ]
        return PredictiveIntervals(mean=rates[0], lower=rates[1], upper=rates[2], level=level)

    def n_parameters(self) -> int:
        module = getattr(self, "module", None)
        return 0 if module is None else sum(p.numel() for p in module.parameters())
