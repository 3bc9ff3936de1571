"""LangevinFlow: a sequential VAE whose latents follow underdamped Langevin dynamics.

After Song, Keller, Yue, Perona & Welling, "Langevin Flows for Modeling Neural Latent
Dynamics" (2025, arXiv 2507.11531); authors' code: github.com/KingJamesSong/LangevinFlow_CCN.
This is an independent implementation of the paper's model. Shapes are (trial, time, neuron)
for data and (batch, time, feature) inside the network; ``T`` observed bins, ``F`` forward
bins, ``H`` the hidden size.

Model
-----
- Encoder: a GRU over the held-in spikes, ``h_t = GRU(x_t, h_{t-1})`` with ``h_{-1} = 0``.
  A Gaussian posterior over the initial position and velocity comes from ``h_0``:
  ``q(z_0) = N(mu_z(h_0), sigma_z^2(h_0))``, ``q(v_0) = N(mu_v(h_0), sigma_v^2(h_0))``.
- Latent dynamics, underdamped Langevin with step ``dt`` and damping ``gamma``::

      z_{t+1} = z_t + dt v_t
      v_{t+1} ~ N((1 - gamma) v_t - dt grad U(z_t), 2 gamma I)

- Potential: the ``H``-dim latent is arranged as (channel, site); neighbouring sites are
  coupled by a 1-D convolution ``W`` (kernel 3, zero padding, weights L2-normalised over the
  kernel axis as in the authors' code) and ``U(z) = sum_{c,s} (W * z)[c, s] z[c, s]``. The
  force is ``grad U(z) = (W + W^T) z`` (U is quadratic): the (H, H) matrix is built once per
  forward pass, so each step costs one matmul instead of a double backward through autograd;
  a unit test checks it equals autograd's gradient of U.
- Decoder: one Transformer encoder layer (post-norm, ``n_heads`` heads, T-Fixup-scaled init as
  in the authors' code) over the sequence of ``[z_t, v_t, h_t]`` (width ``3H``), then a
  linear readout to the log-rates of all neurons (held-in and held-out) for all ``T + F``
  bins.
- Loss: mean Poisson NLL per (trial, bin, neuron) + ``beta * KL`` with
  ``KL = KL(q(z_0)||N(0,I)) + KL(q(v_0)||N(0,I)) + sum_t KL(N(m_{t+1}, 2 gamma I) ||
  N(0, velocity_prior_var I))`` per trial, where ``m_{t+1} = (1 - gamma) v_t - dt grad U(z_t)``
  is the velocity transition mean; ``beta`` ramps linearly from 0 to ``kl_weight`` over
  ``kl_warmup_epochs`` (the L2 weight decay ramps the same way over ``l2_warmup_epochs``).
  Coordinated dropout on the held-in input: entries are kept with probability ``cd_rate``
  (scaled by ``1/cd_rate``); the NLL of held-in observed entries that were kept passes
  gradients only for a random ``cd_pass_rate`` share (held-out neurons and forward bins
  always do); ``cd_pass_rate=None`` means ``1 - cd_rate``, as in the authors' code. Adam +
  ReduceLROnPlateau on the validation NLL; the checkpoint with the lowest validation NLL
  (train trials held out inside ``fit``) is kept.
- Prediction: mean over ``n_samples`` posterior/Langevin samples of the log-rates, then exp.

Where this departs from the authors' code (paper equations implemented instead)
-------------------------------------------------------------------------------
1. Encoder timing: their loop feeds bin ``t-1`` at step ``t`` (bin 0 twice, the last observed
   bin only in the forward window). Here ``h_t`` reads bin ``t``.
2. Per-step KL: their call ``kl_gauss(v, 2*gamma, mean2=0, var2=0.1)`` passes the *sampled*
   velocity as the mean and the variance ``2 gamma`` in the log-variance slot. Here the KL is
   between the transition distribution ``N(m_{t+1}, 2 gamma I)`` (mean, variance) and the
   velocity prior ``N(0, velocity_prior_var I)`` (0.1, their value).
3. Velocity update: their code computes ``(1 - gamma)(v_t - dt grad U)``; here the paper's
   mean ``(1 - gamma) v_t - dt grad U(z_t)``.
4. Potential: their ``Vz.bmm(z^T).sum()`` also multiplies different channels at the same site;
   here ``U = sum(conv(z) * z)`` (the coupled-oscillator energy); their zero init of the
   coupling kernel is replaced by a small seeded random init (a zero kernel has no defined
   L2-normalised direction).
5. Forward window: the encoder gets no observation there; it keeps running on zero input
   (their code re-feeds the last observed bin).

Other choices: dropout is applied to the GRU outputs (their GRUCell loop also feeds the
dropped state back into the recurrence); the readout bias starts at each neuron's log mean
count (from a random bias the first steps drove MC_Maze_Small into a constant-rate solution
it never left). The ``paper`` preset keeps the authors' settings and uses their per-dataset
values (``PAPER_SETTINGS``) when the dataset is one of theirs. The ``cpu`` preset is smaller
(hidden 32, 40 epochs of at least 32 batches of 32 trials) and differs in two ways that
matter: ``cd_pass_rate=0`` (pure coordinated dropout; with the authors' pass-through the
model partly copies held-in spikes into its rates: Lorenz rate R2 0.65 instead of 0.92,
co-bps 0.379 instead of 0.387; ``benchmarks/bench_langevin_flow.py --part ablation``) and ``use_eval_heldin=True`` (the eval trials' held-in spikes are extra training
targets, allowed by NLB's rules).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from nlbsuite.adapter import (
    ModelAdapter,
    ModelConfig,
    ModelInfo,
    fixed_threads,
    resolve_device,
    seed_everything,
)
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import require

#: Authors' per-dataset training settings (their train_langevin_*.py scripts, 20 ms bins).
PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    "mc_maze": dict(batch_size=256, lr=3e-3, weight_decay=2e-5, gamma=0.55, cd_rate=0.5, epochs=2000),
    "area2_bump": dict(batch_size=32, lr=3e-3, weight_decay=2e-5, gamma=0.55, cd_rate=0.4, epochs=2000),
    "dmfc_rsg": dict(batch_size=64, lr=1e-3, weight_decay=1e-5, gamma=0.7, cd_rate=0.6, epochs=1000),
    "mc_rtt": dict(batch_size=64, lr=3e-3, weight_decay=2e-5, gamma=0.55, cd_rate=0.3, epochs=6000),
}  # fmt: skip


@dataclass
class LangevinFlowConfig(ModelConfig):
    """Hyperparameters. ``hidden`` is the GRU size and the size of z and of v (the decoder
    width is ``3 * hidden``); it must be a multiple of ``n_channels``, and ``3 * hidden`` a
    multiple of ``n_heads``.

    ``cd_rate``: probability that a held-in input entry is kept (authors' convention).
    ``min_batches_per_epoch``: an epoch makes as many passes over the training trials as it
    takes to reach this many optimizer steps, so small datasets (MC_Maze_Small) get enough
    updates per epoch for the epoch-based warm-ups, LR schedule and checkpointing.
    ``num_threads``: torch CPU threads in fit and predict (0: torch's default); a fixed
    count gives the same numbers on every machine.
    """

    hidden: int = 280
    n_channels: int = 4
    kernel_size: int = 3
    n_heads: int = 2
    ff_dim: int = 512
    dropout: float = 0.05
    gamma: float = 0.55
    dt: float = 0.01
    velocity_prior_var: float = 0.1
    kl_weight: float = 0.1
    kl_warmup_epochs: int = 500
    l2_warmup_epochs: int = 500
    weight_decay: float = 2e-5
    cd_rate: float = 0.5
    cd_pass_rate: float | None = None
    lr: float = 3e-3
    lr_factor: float = 0.95
    lr_patience: int = 10
    lr_min: float = 1e-5
    grad_clip: float | None = None
    batch_size: int = 256
    min_batches_per_epoch: int = 1
    epochs: int = 2000
    early_stop_patience: int | None = None
    valid_fraction: float = 0.1
    val_samples: int = 4
    use_eval_heldin: bool = False
    paper_dataset_settings: bool = False
    n_samples: int = 50
    num_threads: int = 1


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


def warmup(epoch: int, n_epochs: int) -> float:
    """Linear ramp from 0 at epoch 0 to 1 at ``n_epochs`` (1 throughout if ``n_epochs`` is 0)."""
    return min(1.0, epoch / n_epochs) if n_epochs > 0 else 1.0


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
        self, x: torch.Tensor, n_forward: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-rates (batch, T + F, n_out) and the per-trial KL (batch,) for held-in spikes
        ``x`` (batch, T, n_in)."""
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
        return self.readout(self.decoder(latents)), kl


class LangevinFlow(ModelAdapter):
    """LangevinFlow (Song et al. 2025): GRU encoder, Langevin latents, Transformer decoder."""

    info = ModelInfo(
        name="langevin_flow",
        citation="Song, Keller, Yue, Perona & Welling 2025, Langevin Flows for Modeling Neural "
        "Latent Dynamics (arXiv 2507.11531)",
        url="https://github.com/KingJamesSong/LangevinFlow_CCN",
        stochastic=True,
        description="sequential VAE with underdamped Langevin latents and a coupled-oscillator "
        "potential; GRU encoder, one-layer Transformer decoder",
    )
    config_class = LangevinFlowConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(
            hidden=16, ff_dim=32, epochs=10, batch_size=16, lr=1e-2, kl_warmup_epochs=4,
            l2_warmup_epochs=4, n_samples=4, val_samples=1, device="cpu",
        ),
        "cpu": dict(
            hidden=32, ff_dim=128, lr=5e-3, batch_size=32, min_batches_per_epoch=32, epochs=40,
            kl_warmup_epochs=10, l2_warmup_epochs=10, cd_pass_rate=0.0, use_eval_heldin=True,
        ),
        "paper": dict(paper_dataset_settings=True),
    }  # fmt: skip

    def _resolved_config(self, data: PhaseData) -> LangevinFlowConfig:
        cfg = self.config
        assert isinstance(cfg, LangevinFlowConfig)
        if cfg.paper_dataset_settings and data.dataset in PAPER_SETTINGS:
            cfg = replace(cfg, **PAPER_SETTINGS[data.dataset])
        require(
            cfg.hidden % cfg.n_channels == 0 and (3 * cfg.hidden) % cfg.n_heads == 0,
            f"config hidden={cfg.hidden}: must be a multiple of n_channels={cfg.n_channels}, "
            f"and 3 * hidden a multiple of n_heads={cfg.n_heads}",
        )
        require(0.0 < cfg.cd_rate <= 1.0, f"config cd_rate={cfg.cd_rate}: expected (0, 1]")
        return cfg

    # ------------------------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------------------------

    def _training_arrays(self, data: PhaseData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Held-in inputs (trial, T, n_in), targets and target masks (trial, T + F, n_out).

        Train trials have every target; eval trials (when ``use_eval_heldin``) only their
        observed held-in spikes.
        """
        cfg = self._cfg
        full = data.train_spikes_full()
        inputs = [data.train_spikes_heldin]
        targets = [full]
        masks = [np.ones_like(full)]
        if cfg.use_eval_heldin:
            ev = data.eval_spikes_heldin
            n_eval = ev.shape[0]
            target = np.zeros((n_eval, *full.shape[1:]))
            target[:, : data.n_bins, : data.n_heldin] = ev
            mask = np.zeros_like(target)
            mask[:, : data.n_bins, : data.n_heldin] = 1.0
            inputs.append(ev)
            targets.append(target)
            masks.append(mask)
        return np.concatenate(inputs), np.concatenate(targets), np.concatenate(masks)

    @fixed_threads
    def fit(self, data: PhaseData) -> None:
        seed_everything(self.seed)
        cfg = self._cfg = self._resolved_config(data)
        device = torch.device(resolve_device(cfg.device))
        gen = torch.Generator(device=device).manual_seed(self.seed)
        self._n_in, self._n_bins, self._n_forward = data.n_heldin, data.n_bins, data.n_forward
        n_out = data.n_heldin + data.n_heldout
        net = LangevinFlowNet(data.n_heldin, n_out, cfg)
        with torch.no_grad():  # start at each neuron's mean rate (log of mean count per bin)
            mean_count = data.train_spikes_full().mean(axis=(0, 1))
            net.readout.bias.copy_(torch.as_tensor(np.log(np.maximum(mean_count, 1e-3))))
        self._net = net = net.to(device)

        x_all, y_all, m_all = (
            torch.as_tensor(a, dtype=torch.float32, device=device)
            for a in self._training_arrays(data)
        )
        n_train = data.train_spikes_heldin.shape[0]
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(n_train)
        n_valid = max(1, round(cfg.valid_fraction * n_train)) if n_train > 1 else 0
        valid_idx = torch.as_tensor(np.sort(perm[:n_valid]), device=device)
        fit_idx = np.concatenate([np.sort(perm[n_valid:]), np.arange(n_train, x_all.shape[0])])
        fit_idx_t = torch.as_tensor(fit_idx, device=device)

        n_batches = math.ceil(len(fit_idx) / cfg.batch_size)
        passes = max(1, math.ceil(cfg.min_batches_per_epoch / n_batches))  # per epoch
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=cfg.lr_factor, patience=cfg.lr_patience, threshold=0.0,
            min_lr=cfg.lr_min,
        )  # fmt: skip
        self.history: list[float] = []  # per-epoch training NLL (mean per target entry)
        self.kl_history: list[float] = []  # per-epoch KL (mean per trial)
        self.valid_history: list[float] = []
        best = (math.inf, copy.deepcopy(net.state_dict()), -1)
        start = time.perf_counter()
        epochs = tqdm(range(cfg.epochs), desc="langevin_flow", disable=None, leave=False)
        for epoch in epochs:
            beta = cfg.kl_weight * warmup(epoch, cfg.kl_warmup_epochs)
            wd = cfg.weight_decay * warmup(epoch, cfg.l2_warmup_epochs)
            optimizer.param_groups[0]["weight_decay"] = wd
            net.train()
            order = torch.cat(
                [
                    fit_idx_t[torch.randperm(len(fit_idx_t), generator=gen, device=device)]
                    for _ in range(passes)
                ]
            )
            totals, count = np.zeros(2), 0
            for batch in order.split(cfg.batch_size):
                nll, kl = self._batch_loss(x_all[batch], y_all[batch], m_all[batch], gen)
                loss = nll + beta * kl
                optimizer.zero_grad()
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                optimizer.step()
                totals += np.array([nll.item(), kl.item()]) * len(batch)
                count += len(batch)
            self.history.append(totals[0] / count)
            self.kl_history.append(totals[1] / count)
            if n_valid:
                valid = self._valid_nll(x_all[valid_idx], y_all[valid_idx])
                self.valid_history.append(valid)
                scheduler.step(valid)
                if valid < best[0]:
                    best = (valid, copy.deepcopy(net.state_dict()), epoch)
                epochs.set_postfix(loss=f"{self.history[-1]:.4f}", valid=f"{valid:.4f}")
                if (
                    cfg.early_stop_patience is not None
                    and epoch - best[2] >= cfg.early_stop_patience
                ):
                    break
        if n_valid:
            net.load_state_dict(best[1])
        self.best_epoch = best[2]
        self.fit_seconds = time.perf_counter() - start

    def _batch_loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Coordinated-dropout Poisson NLL (mean per target entry) and KL (mean per trial)."""
        cfg = self._cfg
        keep = torch.rand(x.shape, generator=gen, device=x.device) < cfg.cd_rate
        log_rates, kl = self._net((x * keep) / cfg.cd_rate, self._n_forward, gen)
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
    def _valid_nll(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Mean Poisson NLL of the sample-averaged log-rates (fixed noise seed)."""
        self._net.eval()
        log_rates = self._mean_log_rates(x, self._cfg.val_samples, seed=self.seed + 1)
        return F.poisson_nll_loss(log_rates, y, log_input=True, full=False).item()

    # ------------------------------------------------------------------------------------
    # Prediction
    # ------------------------------------------------------------------------------------

    @torch.no_grad()
    def _mean_log_rates(self, x: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
        """(trial, T + F, n_out) mean over ``n_samples`` draws of the log-rates."""
        gen = torch.Generator(device=x.device).manual_seed(seed)
        total = torch.zeros(())
        for _ in range(n_samples):
            parts = [
                self._net(chunk, self._n_forward, gen)[0] for chunk in x.split(self._cfg.batch_size)
            ]
            total = total + torch.cat(parts)
        return total / n_samples

    @fixed_threads
    def predict(self, data: PhaseData) -> Rates:
        require(hasattr(self, "_net"), "langevin_flow: call fit() before predict()")
        self._net.eval()
        device = next(self._net.parameters()).device
        out = []
        for spikes in (data.train_spikes_heldin, data.eval_spikes_heldin):
            x = torch.tensor(spikes, dtype=torch.float32, device=device)  # inputs are read-only
            log_rates = self._mean_log_rates(x, self._cfg.n_samples, seed=self.seed + 2)
            out.append(log_rates.double().exp().cpu().numpy())
        return Rates.from_full(out[0], out[1], data.n_heldin, data.n_bins)

    def n_parameters(self) -> int:
        if not hasattr(self, "_net"):
            return 0
        return sum(p.numel() for p in self._net.parameters() if p.requires_grad)
