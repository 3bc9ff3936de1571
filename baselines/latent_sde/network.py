"""The latent SDE's torch network, training and posterior sampling (see
:mod:`baselines.latent_sde` for the model). Functions take the adapter as ``model`` and keep
their state on it (``module``, ``_device``, ``_spb``, ``_rng``, ``_gen``, histories).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchsde
from torch import nn

from baselines.latent_sde import (
    LatentSDE,
    LatentSDEConfig,
    PredictiveIntervals,
    check_config,
    predictive_interval,
    steps_per_bin,
)
from nlbsuite.adapter import seed_everything
from nlbsuite.data import PhaseData, Rates
from nlbsuite.training import (
    Schedule,
    average_rates,
    poisson_nll,
    split_trials,
    torch_device,
    train,
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
    """Coupled oscillators (+ an optional small MLP term, "hybrid"), per solver step.

    ``kind="stuart_landau"`` (the authors'): state z = [x, y] (batch, 2n),
    ``x' = a x - omega y - r^2 x + K x``, ``y' = a y + omega x - r^2 y + K y`` (r^2 = x^2 + y^2):
    each oscillator has a limit cycle of radius sqrt(a) for a > 0 and a stable focus for a < 0.
    ``kind="damped"``: ``x'' = -gamma x' - omega^2 x + K x``, state z = [x, v / omega] so both
    halves have the same scale. Rates per second; the drift is returned per solver step of
    ``step_s`` seconds. ``omega = max_omega_dt / step_s * sigmoid(raw)``: bounded so the
    rotation per step stays at most ``max_omega_dt`` radians, where explicit solvers stay
    accurate (Heun amplifies a rotation by sqrt(1 + (omega dt)^4 / 4) per step).
    """

    def __init__(
        self,
        n: int,
        step_s: float,
        omega_hz: tuple[float, float],
        hybrid_hidden: int = 0,
        kind: str = "damped",
        max_omega_dt: float = 0.5,
    ) -> None:
        super().__init__()
        self.n, self.step_s, self.kind = n, step_s, kind
        self.omega_max = max_omega_dt / step_s  # rad/s
        omega = 2 * math.pi * torch.linspace(omega_hz[0], omega_hz[1], n)
        frac = (omega / self.omega_max).clamp(1e-4, 0.95)
        self.raw_omega = nn.Parameter(torch.log(frac / (1 - frac)))
        if kind == "stuart_landau":
            self.growth = nn.Parameter(torch.ones(n))  # a, 1/s (the authors' init)
        else:
            self.raw_gamma = nn.Parameter(torch.full((n,), math.log(math.expm1(1.0))))  # 1/s
        self.coupling = nn.Parameter(torch.zeros(n, n))  # 1/s (SL) or 1/s^2 (damped)
        n_extra = 2 * n if kind == "stuart_landau" else n
        self.extra = mlp(2 * n, hybrid_hidden, n_extra) if hybrid_hidden > 0 else None

    def omega(self) -> torch.Tensor:
        return self.omega_max * torch.sigmoid(self.raw_omega)

    def gamma(self) -> torch.Tensor:
        return nn.functional.softplus(self.raw_gamma)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        omega, dt = self.omega(), self.step_s
        if self.kind == "stuart_landau":
            x, y = z[:, : self.n], z[:, self.n :]
            radial = self.growth - (x**2 + y**2)
            dx = radial * x - omega * y + x @ self.coupling.T
            dy = radial * y + omega * x + y @ self.coupling.T
            out = dt * torch.cat([dx, dy], dim=1)
            return out if self.extra is None else out + self.extra(z)
        x, u = z[:, : self.n], z[:, self.n :]  # u = v / omega
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
        learned = cfg.z0_prior == "learned"  # else fixed N(0, I), the authors'
        self.prior_z0_mean = nn.Parameter(torch.zeros(d), requires_grad=learned)
        self.prior_z0_logvar = nn.Parameter(torch.zeros(d), requires_grad=learned)
        if cfg.drift == "neural":
            self.prior_drift: nn.Module = mlp(d, cfg.neural_hidden, d, layers=cfg.neural_layers)
        else:
            hidden = cfg.hybrid_hidden if cfg.drift == "hybrid" else 0
            self.prior_drift = OscillatorDrift(
                n, step_s, cfg.omega_hz, hidden, cfg.oscillator, cfg.max_omega_dt
            )
        self.posterior_net = mlp(d + cfg.context_dim, cfg.posterior_hidden, d)
        self.log_sigma = nn.Parameter(torch.full((d,), math.log(cfg.init_sigma)))
        self.state_diffusion = cfg.diffusion == "state"
        if self.state_diffusion:  # sigma(z) = 2 init_sigma * sigmoid(w z + b), per dimension
            self.diffusion_w = nn.Parameter(torch.full((d,), 0.1))
            self.diffusion_b = nn.Parameter(torch.zeros(d))
        self.n_neurons = n_neurons
        self.readout: nn.Module = (
            mlp(d, cfg.readout_hidden, n_neurons, out_scale=1.0)
            if cfg.readout_hidden > 0
            else nn.Linear(d, n_neurons)
        )
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
        """Diagonal diffusion: a learned constant, or state dependent (``diffusion="state"``)."""
        if self.state_diffusion:
            return 2 * self.log_sigma.exp() * torch.sigmoid(self.diffusion_w * y + self.diffusion_b)
        return self.log_sigma.exp().expand_as(y)

    @property
    def readout_bias(self) -> torch.Tensor:
        """The readout's output bias (n_neurons,), initialised to the log mean counts."""
        last = self.readout[-1] if isinstance(self.readout, nn.Sequential) else self.readout
        return last.bias

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
        posterior: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample latent paths: (bin, batch * n_samples, d) states, KL(z0) and path KL per path.

        ``posterior=False``: from z0 ~ q(z0) the paths follow the prior SDE alone (the
        authors' predictions; the path KL is then 0).

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
        self._context = context if posterior else None
        self._steps_per_bin, self._n_obs = steps_per_bin, heldin.shape[1]
        try:
            zs, log_ratio = torchsde.sdeint(
                self, z0, ts, bm=bm, method=self.method, dt=1.0, logqp=True
            )
        finally:
            self._context, self._h_cache = None, None
        return zs, kl0, log_ratio.sum(0)


# ----------------------------------------------------------------------------------------
# Training and sampling (functions of the adapter)
# ----------------------------------------------------------------------------------------


def _tensor(model: LatentSDE, a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.array(a, dtype=np.float32), device=model._device)  # a copy


def _targets(model: LatentSDE, data: PhaseData) -> tuple[np.ndarray, np.ndarray]:
    """Held-in inputs (trial, bin, in) and targets (trial, bin+fwd, neuron) with NaN where
    unknown: train trials are fully known, eval trials only held-in observed bins."""
    full = data.train_spikes_full()
    inputs = [data.train_spikes_heldin]
    targets = [full]
    if model.cfg.use_eval_heldin:
        ev = np.full((data.eval_spikes_heldin.shape[0], *full.shape[1:]), np.nan)
        ev[:, : data.n_bins, : data.n_heldin] = data.eval_spikes_heldin
        inputs.append(data.eval_spikes_heldin)
        targets.append(ev)
    return np.concatenate(inputs), np.concatenate(targets)


def _paths(
    model: LatentSDE, heldin: torch.Tensor, n_total_bins: int, entropy: int, n_samples: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latent paths (batch * S, bin, d), KL(z0) and path KL (batch * S,) for one batch."""
    zs, kl0, kl_path = model.module.run(
        heldin, n_total_bins, model._spb, entropy, model._gen, n_samples
    )
    return zs.transpose(0, 1), kl0, kl_path


def _entropy(model: LatentSDE) -> int:
    return int(model._rng.integers(2**31 - 1))


def fit(model: LatentSDE, data: PhaseData) -> None:
    """Maximise the ELBO with :func:`nlbsuite.training.train`; keep the checkpoint with the
    lowest validation NLL of held-out and forward entries (sample-mean rates)."""
    cfg = model.cfg
    check_config(cfg)
    seed_everything(model.seed)
    model._device = torch_device(cfg.device)
    model._spb = steps_per_bin(data.bin_width_ms, cfg.dt_ms or data.bin_width_ms)
    step_s = data.bin_width_ms / 1000.0 / model._spb
    behavior = data.train_behavior if cfg.behavior_weight > 0 else None
    if behavior is not None and behavior.ndim != 3:
        behavior = None
    n_beh = 0 if behavior is None else behavior.shape[2]
    n_neurons = data.n_heldin + data.n_heldout
    model.module = LatentSDEModule(cfg, data.n_heldin, n_neurons, step_s, n_beh).to(model._device)
    full = data.train_spikes_full()
    with torch.no_grad():
        model.module.readout_bias.copy_(
            _tensor(model, np.log(np.maximum(full.mean(axis=(0, 1)), 1e-3)))
        )
    # One NumPy stream for the split, the batch order and the Brownian entropies.
    model._rng = np.random.default_rng(model.seed)
    model._gen = torch.Generator(device=model._device).manual_seed(model.seed)

    inputs, targets = _targets(model, data)
    n_train = data.train_spikes_heldin.shape[0]
    fit_idx, val_idx = split_trials(n_train, cfg.val_fraction, model._rng)
    fit_idx = np.concatenate([fit_idx, np.arange(n_train, len(inputs))])
    x_all, y_all = _tensor(model, inputs), _tensor(model, targets)
    mask_all = torch.isfinite(y_all)
    y_all = torch.nan_to_num(y_all)
    beh = None if behavior is None else _tensor(model, behavior)

    def loss_fn(idx: torch.Tensor, epoch: int) -> torch.Tensor:
        ramp = min(1.0, (epoch + 1) / max(1, cfg.kl_warmup_epochs))
        beta = cfg.kl_weight * (cfg.kl_start + (1.0 - cfg.kl_start) * ramp)
        y, mask = y_all[idx], mask_all[idx]
        zs, kl0, kl_path = _paths(model, x_all[idx], y.shape[1], _entropy(model))
        log_rates = model.module.readout(zs)
        nll = torch.where(mask, log_rates.exp() - y * log_rates, 0.0).sum()
        n_obs = mask.sum().clamp_min(1)
        loss = (nll + beta * (kl0.sum() + kl_path.sum())) / n_obs
        if beh is not None:
            loss = loss + cfg.behavior_weight * _behavior_nll(model, zs, idx, beh)
        return loss

    def validate() -> float:
        return _val_nll(model, x_all[val_idx], y_all[val_idx], data.n_bins, data.n_heldin)

    opt = torch.optim.AdamW(model.module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = train(
        model.module,
        opt,
        loss_fn,
        fit_idx,
        Schedule(
            epochs=cfg.epochs,
            batch_size=min(cfg.batch_size, math.ceil(len(fit_idx) / cfg.min_steps_per_epoch)),
            validate_every=cfg.eval_every,
            grad_clip=cfg.grad_clip,
        ),
        shuffle=model._rng,
        validate=validate if len(val_idx) else None,
        metric="valid_nll",
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, cfg.epochs), eta_min=cfg.lr * cfg.lr_final_fraction
        ),
        desc="latent_sde",
    )
    model.history = history.train["loss"]
    model.val_history = history.valid


def _behavior_nll(
    model: LatentSDE, zs: torch.Tensor, idx: torch.Tensor, beh: torch.Tensor
) -> torch.Tensor:
    """Mean Gaussian NLL of the behaviour head over the batch's train trials (observed bins).

    ``zs``: (batch, bin, d); ``beh``: (train trial, bin, dim); eval trials have none."""
    head, logstd = model.module.behavior, model.module.behavior_logstd
    assert head is not None and logstd is not None
    is_train = idx < beh.shape[0]
    if not bool(is_train.any()):
        return zs.new_zeros(())
    target = beh[idx[is_train]]
    pred = head(zs[is_train][:, : target.shape[1]])
    return (logstd + 0.5 * ((target - pred) / logstd.exp()) ** 2).mean()


@torch.no_grad()
def _val_nll(
    model: LatentSDE, x: torch.Tensor, y: torch.Tensor, n_bins: int, n_heldin: int
) -> float:
    """Poisson NLL per held-out observed / forward target of the sample-mean rates."""
    model.module.eval()
    s = model.cfg.val_samples
    gen_state = model._gen.get_state()
    model._gen.manual_seed(model.seed + 1)
    posterior = model.cfg.predict_with == "posterior"  # validate what is predicted
    zs, _, _ = model.module.run(
        x, y.shape[1], model._spb, model.seed + 1, model._gen, s, posterior
    )
    zs = zs.transpose(0, 1)
    model._gen.set_state(gen_state)
    log_rates = model.module.readout(zs)
    rates = log_rates.exp().reshape(x.shape[0], s, *log_rates.shape[1:]).mean(1)
    keep = torch.ones_like(y, dtype=torch.bool)
    keep[:, :n_bins, :n_heldin] = False
    return poisson_nll(rates, y, keep)


@torch.no_grad()
def _sample_rates(
    model: LatentSDE, heldin: np.ndarray, n_total_bins: int, n_samples: int, part: int
):
    """Yield (trial slice, rates (trial, sample, bin, neuron)) in chunks, deterministically."""
    model.module.eval()
    gen = torch.Generator(device=model._device).manual_seed(model.seed + 1000 * part)
    per = max(1, model.cfg.predict_batch // max(1, n_samples))
    for chunk, start in enumerate(range(0, heldin.shape[0], per)):
        x = _tensor(model, heldin[start : start + per])
        entropy = model.seed + 7919 * (chunk + 1) + part
        posterior = model.cfg.predict_with == "posterior"
        zs, _, _ = model.module.run(
            x, n_total_bins, model._spb, entropy, gen, n_samples, posterior
        )
        rates = model.module.readout(zs).exp().transpose(0, 1)
        yield (
            slice(start, start + x.shape[0]),
            rates.reshape(x.shape[0], n_samples, n_total_bins, -1).cpu().numpy().astype(np.float64),
        )


@torch.no_grad()
def latents(model: LatentSDE, heldin: np.ndarray, n_total_bins: int) -> np.ndarray:
    """Mean latent paths (trial, bin, 2 n_oscillators) over ``n_samples`` paths, of the kind
    predicted (``predict_with``), from held-in spikes (trial, bin, neuron)."""
    out = np.empty((heldin.shape[0], n_total_bins, model.module.state_dim))
    model.module.eval()
    gen = torch.Generator(device=model._device).manual_seed(model.seed + 4242)
    s = model.cfg.n_samples
    per = max(1, model.cfg.predict_batch // s)
    posterior = model.cfg.predict_with == "posterior"
    for chunk, start in enumerate(range(0, heldin.shape[0], per)):
        x = _tensor(model, heldin[start : start + per])
        entropy = model.seed + 4242 + 7919 * (chunk + 1)
        zs, _, _ = model.module.run(x, n_total_bins, model._spb, entropy, gen, s, posterior)
        paths = zs.transpose(0, 1).reshape(x.shape[0], s, n_total_bins, -1)
        out[start : start + x.shape[0]] = paths.mean(1).cpu().numpy()
    return out


def _summaries(
    model: LatentSDE, data: PhaseData, level: float | None
) -> dict[str, tuple[np.ndarray, ...]]:
    """Per part ("train", "eval"): mean (and lower, upper if ``level``) rate arrays."""
    n_total = data.n_bins + data.n_forward
    out = {}
    for part, (name, heldin) in enumerate(
        (("train", data.train_spikes_heldin), ("eval", data.eval_spikes_heldin))
    ):
        arrays = [np.empty((heldin.shape[0], n_total, model.module.n_neurons))]
        if level is not None:
            arrays += [np.empty_like(arrays[0]), np.empty_like(arrays[0])]
        for sl, rates in _sample_rates(model, heldin, n_total, model.cfg.n_samples, part):
            arrays[0][sl] = average_rates(rates.transpose(1, 0, 2, 3))  # over samples
            if level is not None:
                arrays[1][sl], arrays[2][sl] = predictive_interval(rates, level, axis=1)
        out[name] = tuple(arrays)
    return out


def predict(model: LatentSDE, data: PhaseData) -> Rates:
    s = _summaries(model, data, None)
    return Rates.from_full(s["train"][0], s["eval"][0], data.n_heldin, data.n_bins)


def predict_intervals(model: LatentSDE, data: PhaseData, level: float) -> PredictiveIntervals:
    """Sample-mean rates and central ``level`` intervals (see the adapter's method)."""
    s = _summaries(model, data, level)
    rates = [
        Rates.from_full(s["train"][i], s["eval"][i], data.n_heldin, data.n_bins) for i in range(3)
    ]
    return PredictiveIntervals(mean=rates[0], lower=rates[1], upper=rates[2], level=level)
