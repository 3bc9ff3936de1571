"""The low-rank RNN's torch network, particle filter and training (see
:mod:`baselines.lowrank_rnn` for the model). Functions take the adapter as ``rnn`` and keep
their state on it (``model``: the fitted :class:`LowRankSSM`, ``factor``, sizes, histories).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from baselines.lowrank_rnn import (
    Generated,
    LowRankRNN,
    LowRankRNNConfig,
    bin_factor,
    coarsen,
    refine,
)
from nlbsuite.data import PhaseData, Rates
from nlbsuite.training import Schedule, average_rates, split_trials, torch_device, train

MIN_LOG_VAR, MAX_LOG_VAR = math.log(1e-6), math.log(100.0)


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

    def __init__(
        self,
        n_in: int,
        rank: int,
        channels: int,
        kernels: tuple[int, ...],
        mode: str,
        init_std: float | None = None,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for k in kernels[:-1]:
            layers += [_Pad(*_padding(k, mode)), nn.Conv1d(width, channels, k), nn.GELU()]
            width = channels
        layers += [_Pad(*_padding(kernels[-1], mode)), nn.Conv1d(width, 2 * rank, kernels[-1])]
        self.net = nn.Sequential(*layers)
        self.rank = rank
        if init_std is not None:  # the authors': log-variance bias starts at log(init_std^2)
            with torch.no_grad():
                layers[-1].bias[rank:] += 2 * math.log(init_std)

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
        if cfg.nonlinearity == "relu_diff":  # the authors': uniform in +-1/sqrt(N)
            h = (2 * torch.rand(u) - 1) / math.sqrt(u)
        else:
            h = torch.rand(u) if cfg.nonlinearity == "clipped_relu" else torch.zeros(u)
        self.h = nn.Parameter(h)
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
        self.encoder = ConvEncoder(
            n_in, r, cfg.enc_channels, tuple(cfg.enc_kernels), cfg.encoder, cfg.enc_init_std
        )

    @property
    def decay(self) -> torch.Tensor:
        return torch.exp(-torch.exp(self.decay_param))

    def transition(self, z: torch.Tensor, decay: torch.Tensor | None = None) -> torch.Tensor:
        """Noise-free step, z (..., R) -> (..., R); ``decay``: :attr:`decay`, passed in by
        callers that step many times."""
        decay = self.decay if decay is None else decay
        if self.nonlinearity == "relu_diff":  # relu(x + h) - relu(x), the authors' unit
            x = z @ self.m.T
            act = torch.relu(x + self.h) - torch.relu(x)
        elif self.nonlinearity == "clipped_relu":
            act = nn.functional.hardtanh(nn.functional.linear(z, self.m, self.h), 0.0, 1.0)
        else:
            act = torch.relu(nn.functional.linear(z, self.m, self.h))
        return torch.addcmul(act @ self.n, decay, z)

    def rates(self, z: torch.Tensor) -> torch.Tensor:
        """Expected counts per bin (..., neuron)."""
        x = self.readout(z)
        return torch.exp(x) + 1e-8 if self.link == "exp" else nn.functional.softplus(x) + 1e-6

    def log_rates_and_rates(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log expected counts and expected counts (..., neuron), as the particle filter
        weighs them (the exp link exact, without :meth:`rates`' 1e-8 floor)."""
        x = self.readout(z)
        if self.link == "exp":
            return x, torch.exp(x)
        rate = nn.functional.softplus(x) + 1e-6
        return torch.log(rate), rate


def systematic_resample(log_w: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Ancestor indices (trial, K) by systematic resampling of log-weights (trial, K)."""
    n_trials, k = log_w.shape
    cdf = torch.cumsum(torch.softmax(log_w.detach().double(), dim=1), dim=1)
    u = (
        torch.rand(n_trials, 1, generator=gen, device=log_w.device, dtype=cdf.dtype)
        + torch.arange(k, device=log_w.device, dtype=cdf.dtype)
    ) / k
    return torch.searchsorted(cdf, u).clamp_max(k - 1)  # clamp: cdf[-1] may round below 1


@dataclass
class SMCResult:
    """Per trial: ``bound`` (trial,) the VSMC log-likelihood bound; with ``keep``: particles
    (time, trial, K, R), log-weights (time, trial, K; each step's up to a constant per
    trial, the Poisson log(x!) terms) and ancestors (time, trial, K)."""

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
    the transition as proposal).

    The proposal at an encoder step is the product of the prior step N(mean, var) and the
    encoder's N(e_mean, e_var), so its variance and the log-determinant part of the weight
    depend on the encoder only and are computed for all steps at once; the weight's
    quadratic part is log N(z; mean, var) - log N(z; q_mean, q_var) with
    (z - q_mean)^2 / q_var = eps^2. Training is bound by the per-step Python and autograd
    cost at small batches, so the loop keeps few tensor operations per step.
    """
    n_trials, n_time, _ = obs.shape
    k, r = n_particles, model.m.shape[1]
    device = obs.device
    decay = model.decay
    sd, sd0 = torch.exp(0.5 * model.log_var), torch.exp(0.5 * model.z0_log_var)
    prec = torch.stack([torch.exp(-model.z0_log_var), torch.exp(-model.log_var)])  # (2, R)
    n_enc = enc_spikes.shape[1] if proposal == "encoder" else 0
    if n_enc:
        enc_mean, enc_log_var = model.encoder(enc_spikes)  # (trial, T_enc, R)
        enc_prec = torch.exp(-enc_log_var)
        step_prec = prec[(torch.arange(n_enc, device=device) > 0).long()]  # (T_enc, R)
        q_var = 1.0 / (step_prec + enc_prec)
        log_det = 0.5 * (torch.log(q_var) + torch.log(step_prec)).sum(-1)  # (trial, T_enc)
        q_var_t = q_var[:, :, None].unbind(1)  # per step (trial, 1, R)
        q_sd_t = torch.sqrt(q_var)[:, :, None].unbind(1)
        enc_term_t = (enc_mean * enc_prec)[:, :, None].unbind(1)
        log_det_t = log_det[:, :, None].unbind(1)  # per step (trial, 1)
    obs_t = (obs * mask)[:, :, None].unbind(1)  # per step (trial, 1, neuron)
    mask_t = mask[:, :, None].unbind(1)
    log_fact = (torch.lgamma(obs + 1.0) * mask).sum((1, 2))  # (trial,)
    out = SMCResult(torch.empty(0), [], [], [])
    log_norm = []
    z = log_w = None
    for t in range(n_time):
        if t == 0:
            prior_mean = model.z0_mean.expand(n_trials, k, r)
        else:
            idx = systematic_resample(log_w, gen)
            if keep:
                out.ancestors.append(idx)
            z = torch.gather(z, 1, idx[:, :, None].expand(-1, -1, r))
            prior_mean = model.transition(z, decay)
        eps = torch.randn(n_trials, k, r, generator=gen, device=device)
        if t < n_enc:
            p = prec[min(t, 1)]
            q_mean = q_var_t[t] * torch.addcmul(enc_term_t[t], prior_mean, p)
            z = torch.addcmul(q_mean, q_sd_t[t], eps)
            d = z - prior_mean
            log_w = log_det_t[t] + 0.5 * ((eps * eps).sum(-1) - (d * d) @ p)
        else:
            z = torch.addcmul(prior_mean, sd if t else sd0, eps)
            log_w = None
        log_rate, rate = model.log_rates_and_rates(z)
        log_lik = (obs_t[t] * log_rate - mask_t[t] * rate).sum(-1)
        log_w = log_lik if log_w is None else log_w + log_lik
        log_norm.append(torch.logsumexp(log_w, dim=1))
        if keep:
            out.particles.append(z.detach())
            out.log_weights.append(log_w.detach())
    out.bound = torch.stack(log_norm).sum(0) - n_time * math.log(k) - log_fact
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


# ----------------------------------------------------------------------------------------
# Training and inference (functions of the adapter)
# ----------------------------------------------------------------------------------------


def fit(rnn: LowRankRNN, data: PhaseData) -> None:
    """Maximise the VSMC bound with :func:`nlbsuite.training.train`; keep the checkpoint
    with the best held-out-neuron likelihood on the validation trials."""
    cfg = rnn.cfg
    device = torch_device(cfg.device)
    torch.manual_seed(rnn.seed)
    gen = torch.Generator(device=device).manual_seed(rnn.seed)
    rnn.factor = bin_factor(cfg.bin_ms, data.bin_width_ms, data.n_bins, data.n_forward)
    full = coarsen(data.train_spikes_full(), rnn.factor).astype(np.float32)
    n_train, n_time, n_obs = full.shape  # (trial, model steps incl. forward, neuron)
    n_in, n_bins = data.n_heldin, data.n_bins // rnn.factor
    rnn.n_heldin, rnn.n_bins, rnn.n_forward = n_in, n_bins, n_time - n_bins

    # Validation trials (best epoch by held-out-neuron likelihood) and the fit set.
    fit_idx, val = split_trials(n_train, cfg.val_fraction, np.random.default_rng(rnn.seed))
    obs = [full[fit_idx]]
    mask = [np.ones_like(full[fit_idx])]
    if cfg.train_on_eval_heldin:
        ev = coarsen(data.eval_spikes_heldin, rnn.factor).astype(np.float32)
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

    rnn.model = LowRankSSM(cfg, n_in, n_obs, mean_counts).to(device)
    optimizer = torch.optim.RAdam if cfg.optimizer == "radam" else torch.optim.Adam
    opt = optimizer(rnn.model.parameters(), lr=cfg.lr)
    n_fit = obs_t.shape[0]
    n_batches = -(-n_fit // cfg.batch_size)
    n_epochs = max(1, -(-cfg.updates // n_batches))
    eval_at = set(np.linspace(n_epochs, 0, max(1, cfg.n_evals), endpoint=False).astype(int))
    gamma = (cfg.lr_end / cfg.lr) ** (1.0 / (n_epochs * n_batches)) if cfg.lr_end > 0 else 1.0

    def loss_fn(b: torch.Tensor, epoch: int) -> torch.Tensor:
        res = run_smc(rnn.model, enc_t[b], obs_t[b], mask_t[b], cfg.n_particles, gen, cfg.proposal)
        return -res.bound.sum() / mask_t[b].sum()  # -bound per observed count

    def validate() -> float:  # lower is better: the negative held-out log-likelihood
        return -_val_score(rnn, full[val], device)

    history = train(
        rnn.model,
        opt,
        loss_fn,
        np.arange(n_fit),
        Schedule(epochs=n_epochs, batch_size=cfg.batch_size, validate_every=eval_at,
                 grad_clip=cfg.grad_clip),
        shuffle=gen,
        validate=validate if len(val) else None,
        metric="valid_heldout_nll",
        scheduler=torch.optim.lr_scheduler.ExponentialLR(opt, gamma),
        scheduler_interval="step",
        desc="lowrank_rnn",
    )  # fmt: skip
    rnn.history = history.train["loss"]
    rnn.val_history = [(epoch + 1, -value) for epoch, value in history.valid]
    rnn.example_latents = rnn.latents(data.train_spikes_heldin[:64])  # (trial, bin, R)


def _val_score(rnn: LowRankRNN, val_full: np.ndarray, device: torch.device) -> float:
    """Mean Poisson log-likelihood per held-out-neuron count on validation trials, their
    rates inferred from held-in spikes only (higher is better)."""
    n_in, n_bins = rnn.n_heldin, rnn.n_bins
    rates = _infer(rnn, val_full[:, :n_bins, :n_in], n_repeats=1, seed=rnn.seed + 7919)
    spikes = val_full[:, :n_bins, n_in:]
    pred = rates[:, :n_bins, n_in:]
    return float(np.mean(spikes * np.log(pred) - pred))


@torch.no_grad()
def posterior(
    rnn: LowRankRNN, heldin: np.ndarray, seed: int, n_forward: int
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean latents (trial, T + F, R) and rates (trial, T + F, neuron) from
    held-in spikes (trial, T, heldin), one SMC run."""
    cfg = rnn.cfg
    model = rnn.model
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
    rnn: LowRankRNN, heldin: np.ndarray, n_repeats: int, seed: int, n_forward: int = 0
) -> np.ndarray:
    """Rates (trial, T + F, neuron) averaged over ``n_repeats`` SMC runs (the suite's rule,
    :func:`nlbsuite.training.average_rates`)."""
    return average_rates(
        posterior(rnn, heldin, seed + 1000 * i, n_forward)[1] for i in range(n_repeats)
    )


def predict(rnn: LowRankRNN, data: PhaseData) -> Rates:
    f = rnn.factor
    n_fwd = data.n_forward // f
    reps = max(1, rnn.cfg.n_samples)
    train_in = coarsen(data.train_spikes_heldin, f)
    eval_in = coarsen(data.eval_spikes_heldin, f)
    train = refine(_infer(rnn, train_in, reps, rnn.seed + 1, n_fwd), f)
    evals = refine(_infer(rnn, eval_in, reps, rnn.seed + 2, n_fwd), f)
    return Rates.from_full(train, evals, data.n_heldin, data.n_bins)


@torch.no_grad()
def generate(rnn: LowRankRNN, n_trials: int, n_steps: int, seed: int) -> Generated:
    """Sample ``n_trials`` trials of ``n_steps`` model steps from the fitted generative model
    (no data): z_0 from its prior, transition noise each step, Poisson counts."""
    model = rnn.model
    device = model.m.device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    r = model.m.shape[1]
    std, std0 = torch.exp(0.5 * model.log_var), torch.exp(0.5 * model.z0_log_var)
    z = model.z0_mean + std0 * torch.randn(n_trials, r, generator=gen, device=device)
    latents = []
    for t in range(n_steps):
        if t:
            z = model.transition(z) + std * torch.randn(n_trials, r, generator=gen, device=device)
        latents.append(z)
    lat = torch.stack(latents, 1)  # (trial, step, R)
    rates = model.rates(lat)
    spikes = torch.poisson(rates, generator=gen)
    return Generated(spikes.cpu().numpy(), rates.cpu().double().numpy(), lat.cpu().double().numpy())
