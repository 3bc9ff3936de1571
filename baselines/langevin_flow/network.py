"""LangevinFlow's torch network and its training and sampling (see
:mod:`baselines.langevin_flow` for the model). Functions take the adapter as ``model`` and
keep their state on it (``_net``, ``_cfg``, sizes, histories).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines.langevin_flow import LangevinFlow, LangevinFlowConfig
from nlbsuite.adapter import seed_everything
from nlbsuite.data import PhaseData, Rates
from nlbsuite.training import (
    Schedule,
    average_rates,
    poisson_nll,
    ramp,
    split_trials,
    torch_device,
    train,
    training_arrays,
)


class CoupledOscillatorPotential(nn.Module):
    """``U(z) = sum(conv(z) * z)`` over a (channel, site) arrangement of z (batch, H)."""

    def __init__(self, hidden: int, n_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.n_channels = n_channels
        self.kernel = nn.Parameter(0.1 * torch.randn(n_channels, n_channels, kernel_size))

    def coupling(self, z: torch.Tensor) -> torch.Tensor:
        """(batch, H) nearest-neighbour coupling ``W z``: a 1-D convolution over sites."""
        w = F.normalize(self.kernel, p=2, dim=2)
        zs = z.reshape(z.shape[0], self.n_channels, -1)
        return F.conv1d(zs, w, padding=w.shape[2] // 2).reshape(z.shape)

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """(batch,) potential energy ``sum(W z * z)`` of z (batch, H)."""
        return (self.coupling(z) * z).sum(-1)

    def force_matrix(self) -> torch.Tensor:
        """(H, H) symmetric ``S = W + W^T`` with ``grad U(z) = z @ S`` (row vectors z).

        U is quadratic, so its gradient is linear; building ``W`` once per forward pass (the
        convolution applied to the identity) turns every step's force into one matmul.
        """
        eye = torch.eye(self.hidden, device=self.kernel.device, dtype=self.kernel.dtype)
        w = self.coupling(eye)  # row i = W e_i, so z @ w = (W z)^T
        return w + w.T


def gaussian_kl_std_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(batch,) KL(N(mean, exp(logvar)) || N(0, I)) summed over the last axis."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_kl(mean: torch.Tensor, var: float, prior_var: float) -> torch.Tensor:
    """(batch,) KL(N(mean, var I) || N(0, prior_var I)) summed over the last axis."""
    const = 0.5 * (math.log(prior_var / var) - 1.0 + var / prior_var)
    return (0.5 * mean.pow(2) / prior_var + const).sum(-1)


def langevin_step(
    z: torch.Tensor,
    v: torch.Tensor,
    grad_u: torch.Tensor,
    noise: torch.Tensor,
    gamma: float,
    dt: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One underdamped Langevin step: ``(z_{t+1}, v_{t+1}, mean of v_{t+1})``.

    ``z_{t+1} = z_t + dt v_t``; ``v_{t+1} = (1 - gamma) v_t - dt grad_u + sqrt(2 gamma) noise``
    with ``grad_u = grad U(z_t)`` and standard-normal ``noise``; all (batch, H).
    """
    v_mean = (1.0 - gamma) * v - dt * grad_u
    return z + dt * v, v_mean + math.sqrt(2.0 * gamma) * noise, v_mean


class LangevinFlowNet(nn.Module):
    """Encoder GRU -> Langevin latents -> Transformer decoder -> log-rates."""

    def __init__(self, n_in: int, n_out: int, cfg: LangevinFlowConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.cfg = cfg
        self.encoder = nn.GRU(n_in, h, batch_first=True)
        self.post_z = nn.Linear(h, 2 * h)
        self.post_v = nn.Linear(h, 2 * h)
        self.potential = CoupledOscillatorPotential(h, cfg.n_channels, cfg.kernel_size)
        self.decoder = nn.TransformerEncoderLayer(
            3 * h, cfg.n_heads, cfg.ff_dim, cfg.dropout, batch_first=True
        )
        self._tfixup_init(n_layers=3)
        self.readout = nn.Linear(3 * h, n_out)
        self.dropout = nn.Dropout(cfg.dropout)

    @torch.no_grad()
    def _tfixup_init(self, n_layers: int) -> None:
        """Scale the decoder's init as T-Fixup (Huang et al. 2020), as the authors do."""
        scale = 0.67 * n_layers ** (-0.25)
        layer = self.decoder
        for w in (layer.linear1.weight, layer.linear2.weight, layer.self_attn.out_proj.weight):
            w.mul_(scale)
        d = layer.self_attn.embed_dim
        layer.self_attn.in_proj_weight[2 * d :].mul_(scale * math.sqrt(2.0))

    def forward(
        self,
        x: torch.Tensor,
        n_forward: int,
        generator: torch.Generator | None = None,
        return_latents: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-rates (batch, T + F, n_out) and the per-trial KL (batch,) for held-in spikes
        ``x`` (batch, T, n_in); with ``return_latents`` the decoder input [z, v, h]
        (batch, T + F, 3H) instead of the KL."""
        cfg = self.cfg
        b = x.shape[0]
        if n_forward:
            x = torch.cat([x, x.new_zeros(b, n_forward, x.shape[2])], dim=1)
        hidden = self.dropout(self.encoder(x)[0])  # (batch, T + F, H)

        def sample(mean: torch.Tensor, std: torch.Tensor | float) -> torch.Tensor:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device)
            return mean + std * noise

        z_mean, z_logvar = self.post_z(hidden[:, 0]).chunk(2, dim=-1)
        v_mean, v_logvar = self.post_v(hidden[:, 0]).chunk(2, dim=-1)
        z = sample(z_mean, (0.5 * z_logvar).exp())
        v = sample(v_mean, (0.5 * v_logvar).exp())
        kl = gaussian_kl_std_normal(z_mean, z_logvar) + gaussian_kl_std_normal(v_mean, v_logvar)

        force = self.potential.force_matrix()
        zs, vs = [z], [v]
        for _ in range(hidden.shape[1] - 1):
            noise = torch.randn(v.shape, generator=generator, device=v.device)
            z, v, v_mean = langevin_step(z, v, z @ force, noise, cfg.gamma, cfg.dt)
            kl = kl + gaussian_kl(v_mean, 2.0 * cfg.gamma, cfg.velocity_prior_var)
            zs.append(z)
            vs.append(v)
        latents = torch.cat([torch.stack(zs, 1), torch.stack(vs, 1), hidden], dim=-1)
        if return_latents:
            return self.readout(self.decoder(latents)), latents
        return self.readout(self.decoder(latents)), kl

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Log-rates from decoder inputs [z, v, h] (batch, time, 3H)."""
        return self.readout(self.decoder(latents))


# ----------------------------------------------------------------------------------------
# Training and sampling (functions of the adapter)
# ----------------------------------------------------------------------------------------


def fit(model: LangevinFlow, data: PhaseData) -> None:
    """Train with :func:`nlbsuite.training.train`; keep the checkpoint with the lowest
    validation NLL (train trials held out here)."""
    seed_everything(model.seed)
    cfg = model._cfg = model._resolved_config(data)
    device = torch_device(cfg.device)
    gen = torch.Generator(device=device).manual_seed(model.seed)
    model._n_in, model._n_bins, model._n_forward = data.n_heldin, data.n_bins, data.n_forward
    n_out = data.n_heldin + data.n_heldout
    net = LangevinFlowNet(data.n_heldin, n_out, cfg)
    with torch.no_grad():  # start at each neuron's mean rate (log of mean count per bin)
        mean_count = data.train_spikes_full().mean(axis=(0, 1))
        net.readout.bias.copy_(torch.as_tensor(np.log(np.maximum(mean_count, 1e-3))))
    model._net = net = net.to(device)

    x_all, y_all, m_all = (
        torch.as_tensor(a, dtype=torch.float32, device=device)
        for a in training_arrays(data, cfg.use_eval_heldin)
    )
    n_train = data.train_spikes_heldin.shape[0]
    fit_idx, valid_idx = split_trials(n_train, cfg.valid_fraction, np.random.default_rng(model.seed))
    fit_idx = np.concatenate([fit_idx, np.arange(n_train, x_all.shape[0])])
    valid_t = torch.as_tensor(valid_idx, device=device)
    n_batches = math.ceil(len(fit_idx) / cfg.batch_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=0.0)

    def on_epoch_start(epoch: int) -> None:  # the L2 penalty ramps in with the epochs
        optimizer.param_groups[0]["weight_decay"] = cfg.weight_decay * ramp(
            epoch, cfg.l2_warmup_epochs
        )

    def loss_fn(batch: torch.Tensor, epoch: int) -> tuple[torch.Tensor, dict[str, float]]:
        beta = cfg.kl_weight * ramp(epoch, cfg.kl_warmup_epochs)
        nll, kl = _batch_loss(model, x_all[batch], y_all[batch], m_all[batch], gen)
        return nll + beta * kl, {"nll": nll.item(), "kl": kl.item()}

    def validate() -> float:
        return _valid_nll(model, x_all[valid_t], y_all[valid_t])

    history = train(
        net,
        optimizer,
        loss_fn,
        fit_idx,
        Schedule(
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            passes=max(1, math.ceil(cfg.min_batches_per_epoch / n_batches)),
            patience=cfg.early_stop_patience,
            grad_clip=cfg.grad_clip,
        ),
        shuffle=gen,
        validate=validate if len(valid_idx) else None,
        metric="valid_nll",
        scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=cfg.lr_factor, patience=cfg.lr_patience, threshold=0.0,
            min_lr=cfg.lr_min,
        ),
        on_epoch_start=on_epoch_start,
        desc="langevin_flow",
    )  # fmt: skip
    model.history = history.train["nll"]  # per-epoch training NLL (mean per target entry)
    model.kl_history = history.train["kl"]  # per-epoch KL (mean per trial)
    model.valid_history = [value for _, value in history.valid]
    model.best_epoch = history.best_epoch
    model.fit_seconds = history.seconds


def _batch_loss(
    model: LangevinFlow,
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinated-dropout Poisson NLL (mean per target entry) and KL (mean per trial)."""
    cfg = model._cfg
    keep = torch.rand(x.shape, generator=gen, device=x.device) < cfg.cd_rate
    log_rates, kl = model._net((x * keep) / cfg.cd_rate, model._n_forward, gen)
    nll = F.poisson_nll_loss(log_rates, y, log_input=True, full=False, reduction="none")
    # Held-in observed entries seen by the encoder pass gradients only for a random share.
    pass_rate = 1.0 - cfg.cd_rate if cfg.cd_pass_rate is None else cfg.cd_pass_rate
    pass_mask = torch.rand(x.shape, generator=gen, device=x.device) < pass_rate
    grad_in = (~keep | pass_mask).float()
    grad_mask = torch.ones_like(nll)
    grad_mask[:, : x.shape[1], : x.shape[2]] = grad_in
    weighted = nll * mask
    nll = (weighted * grad_mask + (weighted * (1 - grad_mask)).detach()).sum() / mask.sum()
    return nll, kl.mean()


@torch.no_grad()
def _valid_nll(model: LangevinFlow, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean Poisson NLL of the sample-mean rates (fixed noise seed) over held-out neurons
    and forward bins: the held-in observed entries are the encoder's input, and scoring them
    would reward copying it."""
    rates = _mean_rates(model, x, model._cfg.val_samples, seed=model.seed + 1)
    keep = np.ones(rates.shape, dtype=bool)
    keep[:, : x.shape[1], : x.shape[2]] = False
    return poisson_nll(rates, y.double().cpu().numpy(), keep)


@torch.no_grad()
def latents(model: LangevinFlow, heldin: np.ndarray) -> np.ndarray:
    """Mean over ``n_samples`` draws of the Langevin state [z, v] (trial, T + F, 2H)."""
    model._net.eval()
    device = next(model._net.parameters()).device
    x = torch.tensor(heldin, dtype=torch.float32, device=device)
    gen = torch.Generator(device=device).manual_seed(model.seed + 3)
    h2 = 2 * model._cfg.hidden

    def draw() -> np.ndarray:
        parts = [
            model._net(chunk, model._n_forward, gen, return_latents=True)[1][..., :h2]
            for chunk in x.split(model._cfg.batch_size)
        ]
        return torch.cat(parts).double().cpu().numpy()

    return np.mean([draw() for _ in range(model._cfg.n_samples)], axis=0)


@torch.no_grad()
def latent_motion(model: LangevinFlow, heldin: np.ndarray, seed: int = 0) -> dict[str, float]:
    """The latent-motion probe (one posterior draw per trial of held-in spikes (trial, T, n)):

    - ``force_per_step``: RMS of ``dt * grad U(z_t)``, the deterministic velocity change per
      step, against ``noise_sd_per_step`` sqrt(2 gamma), the velocity noise per step;
    - ``z_motion``: RMS of z_t - z_0 over the trial relative to the RMS spread of z_0 across
      trials (how far the position moves compared with where trials start);
    - ``sensitivity_h_over_zv``: RMS change of the log-rates when the GRU states h are
      shuffled across trials, divided by the change when (z, v) are shuffled: how much more
      the rates depend on the encoder's states than on the Langevin latents.
    """
    net, cfg = model._net, model._cfg
    net.eval()
    device = next(net.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.tensor(heldin, dtype=torch.float32, device=device)
    log_rates, lat = net(x, model._n_forward, gen, return_latents=True)
    h = cfg.hidden
    z = lat[..., :h]
    force = cfg.dt * (z @ net.potential.force_matrix())
    perm = torch.randperm(x.shape[0], generator=gen, device=device)

    def shuffled(lo: int, hi: int) -> float:
        mixed = lat.clone()
        mixed[..., lo:hi] = lat[perm, :, lo:hi]
        return float((net.decode(mixed) - log_rates).pow(2).mean().sqrt())

    spread = float((z[:, 0] - z[:, 0].mean(0)).pow(2).mean().sqrt())
    return {
        "force_per_step": float(force.pow(2).mean().sqrt()),
        "noise_sd_per_step": math.sqrt(2 * cfg.gamma),
        "z_motion": float((z - z[:, :1]).pow(2).mean().sqrt()) / max(spread, 1e-12),
        "sensitivity_h_over_zv": shuffled(2 * h, 3 * h) / max(shuffled(0, 2 * h), 1e-12),
    }


@torch.no_grad()
def _mean_rates(model: LangevinFlow, x: torch.Tensor, n_samples: int, seed: int) -> np.ndarray:
    """(trial, T + F, n_out) float64 mean over ``n_samples`` draws of the rates (the suite's
    rule, :func:`nlbsuite.training.average_rates`)."""
    model._net.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)

    def draw() -> np.ndarray:
        parts = [
            model._net(chunk, model._n_forward, gen)[0] for chunk in x.split(model._cfg.batch_size)
        ]
        return torch.cat(parts).double().exp().cpu().numpy()

    return average_rates(draw() for _ in range(n_samples))


def predict(model: LangevinFlow, data: PhaseData) -> Rates:
    device = next(model._net.parameters()).device
    out = []
    for spikes in (data.train_spikes_heldin, data.eval_spikes_heldin):
        x = torch.tensor(spikes, dtype=torch.float32, device=device)  # inputs are read-only
        out.append(_mean_rates(model, x, model._cfg.n_samples, seed=model.seed + 2))
    return Rates.from_full(out[0], out[1], data.n_heldin, data.n_bins)
