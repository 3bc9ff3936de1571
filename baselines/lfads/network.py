"""LFADS's torch network, losses, training and posterior sampling (see
:mod:`baselines.lfads` for the model). Functions take the adapter as ``model`` and keep their
state on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines.lfads import LFADS, LFADSConfig, ramp
from nlbsuite.adapter import seed_everything
from nlbsuite.data import PhaseData, Rates
from nlbsuite.training import (
    History,
    Schedule,
    split_trials,
    torch_device,
    train,
    training_arrays,
)

#: Sequences (trials x samples) per forward pass when sampling posteriors.
PREDICT_SEQUENCES = 4096


def gaussian_kl(
    mean: torch.Tensor, std: torch.Tensor, prior_mean: torch.Tensor, prior_std: torch.Tensor
) -> torch.Tensor:
    """(batch,) KL(N(mean, std^2) || N(prior_mean, prior_std^2)) summed over the last axis."""
    var_ratio = (std / prior_std).pow(2)
    t1 = ((mean - prior_mean) / prior_std).pow(2)
    return 0.5 * (var_ratio + t1 - 1.0 - var_ratio.log()).sum(-1)


def ar1_log_prob(x: torch.Tensor, log_tau: torch.Tensor, log_nvar: torch.Tensor) -> torch.Tensor:
    """(batch,) log-density of sequences ``x`` (batch, time, dim) under independent AR(1)
    processes per dim: ``x_t = a x_{t-1} + e_t``, ``a = exp(-1/tau)``, ``e_t ~ N(0, nvar)``,
    ``x_0`` from the stationary law ``N(0, nvar / (1 - a^2))``; summed over time and dim."""
    alpha = torch.exp(-1.0 / log_tau.exp())
    nvar = log_nvar.exp()
    means = torch.cat([torch.zeros_like(x[:, :1]), alpha * x[:, :-1]], dim=1)
    var = nvar.expand_as(x).clone()
    var[:, 0] = nvar / (1.0 - alpha.pow(2))
    log_p = -0.5 * ((x - means).pow(2) / var + var.log() + math.log(2 * math.pi))
    return log_p.sum(dim=(1, 2))


def normal_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(batch,) log N(x; mean, std^2) summed over all but the first axis."""
    log_p = -0.5 * (((x - mean) / std).pow(2) + 2 * std.log() + math.log(2 * math.pi))
    return log_p.flatten(1).sum(1)


class NormalizedLinear(nn.Linear):
    """Linear map whose weight rows are L2-normalised (LFADS's factor read-out)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, F.normalize(self.weight, dim=1), self.bias)


class LFADSNet(nn.Module):
    """Bidirectional-GRU encoders -> controller/generator RNN -> factors -> log-rates.

    ``n_in`` held-in input neurons over ``n_obs`` bins; ``n_out`` rates (held-in + held-out)
    over ``n_bins`` = observed + forward bins.
    """

    def __init__(self, n_in: int, n_out: int, n_obs: int, n_bins: int, cfg: LFADSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_obs, self.n_bins = n_obs, n_bins
        self.dropout = nn.Dropout(cfg.dropout)
        self.ic_enc = nn.GRU(n_in, cfg.ic_enc_dim, batch_first=True, bidirectional=True)
        self.ic_enc_h0 = nn.Parameter(torch.zeros(2, 1, cfg.ic_enc_dim))
        self.ic_linear = nn.Linear(2 * cfg.ic_enc_dim, 2 * cfg.ic_dim)
        self.ic_to_g0 = nn.Linear(cfg.ic_dim, cfg.gen_dim)
        self.use_con = cfg.co_dim > 0
        if self.use_con:
            self.ci_enc = nn.GRU(n_in, cfg.ci_enc_dim, batch_first=True, bidirectional=True)
            self.ci_enc_h0 = nn.Parameter(torch.zeros(2, 1, cfg.ci_enc_dim))
            self.con_h0 = nn.Parameter(torch.zeros(1, cfg.con_dim))
            self.con_cell = nn.GRUCell(2 * cfg.ci_enc_dim + cfg.fac_dim, cfg.con_dim)
            self.co_linear = nn.Linear(cfg.con_dim, 2 * cfg.co_dim)
            self.co_prior_log_tau = nn.Parameter(torch.full((cfg.co_dim,), math.log(cfg.co_prior_tau)))
            self.co_prior_log_nvar = nn.Parameter(torch.full((cfg.co_dim,), math.log(cfg.co_prior_nvar)))
        self.gen_cell = nn.GRUCell(max(cfg.co_dim, 1), cfg.gen_dim)
        self.fac_linear = NormalizedLinear(cfg.gen_dim, cfg.fac_dim, bias=False)
        self.readout = nn.Linear(cfg.fac_dim, n_out)
        nn.init.normal_(self.readout.weight, std=1.0 / math.sqrt(cfg.fac_dim))  # fan-in init
        self.ic_prior_mean = nn.Parameter(torch.zeros(cfg.ic_dim))
        self.ic_prior_logvar = nn.Parameter(torch.full((cfg.ic_dim,), math.log(cfg.ic_prior_var)))

    def clip(self, h: torch.Tensor) -> torch.Tensor:
        return h.clamp(-self.cfg.cell_clip, self.cfg.cell_clip)

    def forward(
        self, x: torch.Tensor, sample: bool, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-rates (batch, n_bins, n_out), IC KL and controller-output KL (batch,) for
        held-in spikes ``x`` (batch, n_obs, n_in). ``sample``: draw from the posteriors
        (else use their means; the KLs are then zero)."""
        cfg = self.cfg
        b = x.shape[0]

        def draw(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
            if not sample:
                return mean
            return mean + std * torch.randn(mean.shape, generator=generator, device=mean.device)

        x = self.dropout(x)
        _, h_n = self.ic_enc(x, self.ic_enc_h0.expand(-1, b, -1).contiguous())
        ic_params = self.ic_linear(self.dropout(self.clip(torch.cat([h_n[0], h_n[1]], dim=1))))
        ic_mean, ic_logvar = ic_params.chunk(2, dim=1)
        ic_std = torch.sqrt(ic_logvar.exp() + cfg.ic_post_var_min)
        ic = draw(ic_mean, ic_std)
        ic_kl = (
            gaussian_kl(ic_mean, ic_std, self.ic_prior_mean, (0.5 * self.ic_prior_logvar).exp())
            if sample
            else x.new_zeros(b)
        )
        gen = self.ic_to_g0(ic)
        factor = self.fac_linear(self.dropout(gen))
        if self.use_con:
            ci, _ = self.ci_enc(x, self.ci_enc_h0.expand(-1, b, -1).contiguous())
            fwd, bwd = ci.chunk(2, dim=2)
            lag = cfg.ci_lag  # the controller sees the forward encoder lagged, the backward led
            fwd = F.pad(fwd, (0, 0, lag, 0))[:, : self.n_obs]
            bwd = F.pad(bwd, (0, 0, 0, lag))[:, lag:]
            ci = F.pad(torch.cat([fwd, bwd], dim=2), (0, 0, 0, self.n_bins - self.n_obs))
            ci = self.dropout(self.clip(ci))
            con = self.con_h0.expand(b, -1)
        factors, co_means, co_stds, cos = [], [], [], []
        co = x.new_zeros(b, max(cfg.co_dim, 1))
        for t in range(self.n_bins):
            if self.use_con:
                con = self.clip(self.con_cell(torch.cat([ci[:, t], factor], dim=1), con))
                co_mean, co_logvar = self.co_linear(self.dropout(con)).chunk(2, dim=1)
                co_std = (0.5 * co_logvar).exp()
                co = draw(co_mean, co_std)
                co_means.append(co_mean)
                co_stds.append(co_std)
                cos.append(co)
            gen = self.clip(self.gen_cell(co, gen))
            factor = self.fac_linear(self.dropout(gen))
            factors.append(factor)
        log_rates = self.readout(torch.stack(factors, dim=1))
        co_kl = x.new_zeros(b)
        if self.use_con and sample:
            co_seq = torch.stack(cos, dim=1)
            co_kl = normal_log_prob(
                co_seq, torch.stack(co_means, dim=1), torch.stack(co_stds, dim=1)
            ) - ar1_log_prob(co_seq, self.co_prior_log_tau, self.co_prior_log_nvar)
        return log_rates, ic_kl, co_kl

    def l2_penalty(self) -> torch.Tensor:
        """``l2_gen_scale`` and ``l2_con_scale`` times half the mean squared recurrent weight
        of the generator and controller."""
        cfg = self.cfg
        pen = 0.5 * cfg.l2_gen_scale * self.gen_cell.weight_hh.pow(2).mean()
        if self.use_con:
            pen = pen + 0.5 * cfg.l2_con_scale * self.con_cell.weight_hh.pow(2).mean()
        return pen


def _build(model: LFADS, data: PhaseData) -> torch.Generator:
    """Seed, resolve the config, build the network on ``model``; returns the generator."""
    seed_everything(model.seed)
    cfg = model._cfg = model._resolved_config(data)
    device = torch_device(cfg.device)
    gen = torch.Generator(device=device).manual_seed(model.seed)
    n_in, n_out, n_obs, n_fwd = data.n_heldin, data.n_heldout, data.n_bins, data.n_forward
    model._sizes = (n_in, n_out, n_obs, n_fwd)
    net = LFADSNet(n_in, n_in + n_out, n_obs, n_obs + n_fwd, cfg)
    with torch.no_grad():  # start at each neuron's mean rate (log of mean count per bin)
        mean_count = data.train_spikes_full().mean(axis=(0, 1))
        net.readout.bias.copy_(torch.as_tensor(np.log(np.maximum(mean_count, 1e-3))))
    model._net = net.to(device)
    return gen


def _training(
    model: LFADS, data: PhaseData, gen: torch.Generator, epoch0: int = 0
) -> tuple[Callable, Callable | None, np.ndarray, int]:
    """The loss (its ramps at epoch ``epoch0 + epoch``), validation, fitting trials and
    batch size of one training call on ``model._net`` with ``model._cfg``."""
    cfg, net = model._cfg, model._net
    device = next(net.parameters()).device
    n_in, _, n_obs, _ = model._sizes
    x_all, y_all, a_all = (
        torch.as_tensor(a, dtype=torch.float32, device=device)
        for a in training_arrays(data, cfg.use_eval_heldin)
    )
    n_train = data.train_spikes_heldin.shape[0]
    fit_idx, valid_idx = split_trials(
        n_train, cfg.valid_fraction, np.random.default_rng(model.seed)
    )
    fit_idx = np.concatenate([fit_idx, np.arange(n_train, x_all.shape[0])])
    batch_size = min(cfg.batch_size, len(fit_idx))
    co_mask = torch.ones(y_all.shape[1:], device=device)
    co_mask[:n_obs, :n_in] = 0.0
    valid_x, valid_y = x_all[valid_idx], y_all[valid_idx]
    keep_p = 1.0 - cfg.cd_rate

    def loss_fn(batch: torch.Tensor, epoch: int) -> torch.Tensor:
        epoch += epoch0
        x, y, avail = x_all[batch], y_all[batch], a_all[batch]
        kept = torch.rand(x.shape, generator=gen, device=device) < keep_p
        log_rates, ic_kl, co_kl = net(x * kept / keep_p, sample=True, generator=gen)
        nll = F.poisson_nll_loss(log_rates, y, log_input=True, reduction="none")
        # Coordinated dropout: held-in entries the encoder saw pass no gradient (but a
        # random cd_pass_rate share); held-out neurons and forward bins always do.
        passed = ~kept | (torch.rand(x.shape, generator=gen, device=device) < cfg.cd_pass_rate)
        grad = torch.ones_like(nll)
        grad[:, :n_obs, :n_in] = passed.float()
        recon = (nll * grad * avail).sum() / avail.sum()
        kl = cfg.kl_ic_scale * ic_kl.mean() + cfg.kl_co_scale * co_kl.mean()
        kl_w = ramp(epoch, cfg.kl_start_epoch, cfg.kl_increase_epoch)
        l2_w = ramp(epoch, cfg.l2_start_epoch, cfg.l2_increase_epoch)
        return recon + kl_w * kl + l2_w * net.l2_penalty()

    @torch.no_grad()
    def valid_fn() -> float:
        net.eval()
        log_rates = torch.cat(
            [net(chunk, sample=False)[0] for chunk in valid_x.split(batch_size)]
        )
        nll = F.poisson_nll_loss(log_rates, valid_y, log_input=True, reduction="none")
        return float((nll * co_mask).sum() / (co_mask.sum() * len(valid_y)))

    return loss_fn, (valid_fn if len(valid_idx) else None), fit_idx, batch_size


def _record(model: LFADS, history: History) -> None:
    model.history = history
    model.extras = {
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.train["loss"]),
        "best_valid_co_nll": round(history.best_value, 6) if history.valid else None,
        "torch_threads": torch.get_num_threads(),
    }


def fit(model: LFADS, data: PhaseData) -> None:
    gen = _build(model, data)
    cfg, net = model._cfg, model._net
    loss_fn, valid_fn, fit_idx, batch_size = _training(model, data, gen)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    schedule = Schedule(
        epochs=cfg.epochs, batch_size=batch_size, validate_every=cfg.val_every_epochs,
        patience=cfg.patience_epochs, grad_clip=cfg.grad_clip,
    )  # fmt: skip
    history = train(
        net, optimizer, loss_fn, fit_idx, schedule, shuffle=gen,
        validate=valid_fn, metric="valid_co_nll", desc="lfads",
    )  # fmt: skip
    _record(model, history)


def partial_fit(model: LFADS, data: PhaseData, epochs: int) -> None:
    """Train ``epochs`` more epochs from the model's state (a new model: from the start),
    with the current ``model.config`` (PBT changes ``lr``, ``dropout``, ``cd_rate`` and the
    KL and L2 scales between calls): the optimizer's moments, the generator's state and the
    epoch count (for the KL/L2 ramps) carry over; no early stopping, last weights kept."""
    if getattr(model, "_steps", None) is None or not hasattr(model, "_net"):
        gen = _build(model, data)
        model._steps, model._opt_state = 0, None
    else:
        model._cfg = model._resolved_config(data)
        device = next(model._net.parameters()).device
        gen = torch.Generator(device=device)
        gen.set_state(model._gen_state)
        model._net.dropout.p = model._cfg.dropout
    cfg, net = model._cfg, model._net
    loss_fn, valid_fn, fit_idx, batch_size = _training(model, data, gen, model._steps)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    if model._opt_state is not None:
        optimizer.load_state_dict(model._opt_state)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr
    schedule = Schedule(
        epochs=epochs, batch_size=batch_size, validate_every=epochs, grad_clip=cfg.grad_clip,
        restore_best=False,
    )  # fmt: skip
    history = train(
        net, optimizer, loss_fn, fit_idx, schedule, shuffle=gen,
        validate=valid_fn, metric="valid_co_nll", desc="lfads",
    )  # fmt: skip
    model._steps += epochs
    model._opt_state = optimizer.state_dict()
    model._gen_state = gen.get_state()
    _record(model, history)
    model.extras["epochs_run"] = model._steps


@torch.no_grad()
def sample_rates(model: LFADS, spikes: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """(trial, T + F, n_out) rates averaged over ``n_samples`` posterior samples (the
    posterior means when ``n_samples`` is 0)."""
    net = model._net
    net.eval()
    device = next(net.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.tensor(spikes, dtype=torch.float32, device=device)
    out = []
    for chunk in x.split(max(1, PREDICT_SEQUENCES // max(n_samples, 1))):
        if n_samples == 0:
            out.append(net(chunk, sample=False)[0].double().exp())
            continue
        rep = chunk.repeat_interleave(n_samples, dim=0)
        rates = net(rep, sample=True, generator=gen)[0].double().exp()
        out.append(rates.view(chunk.shape[0], n_samples, *rates.shape[1:]).mean(1))
    return torch.cat(out).cpu().numpy()


def predict(model: LFADS, data: PhaseData) -> Rates:
    n_in, _, n_obs, _ = model._sizes
    n = model._cfg.n_samples
    train = sample_rates(model, data.train_spikes_heldin, n, seed=model.seed + 1)
    ev = sample_rates(model, data.eval_spikes_heldin, n, seed=model.seed + 2)
    return Rates.from_full(train, ev, n_in, n_obs)
