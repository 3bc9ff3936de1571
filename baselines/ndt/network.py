"""NDT's torch network, masking, training and prediction (see :mod:`baselines.ndt` for the
model). STNDT (:mod:`baselines.stndt`) reuses the masking, training and prediction here with
its own network. Functions take the adapter as ``model`` and keep their state on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines.ndt import NDT, NDTConfig
from nlbsuite.adapter import seed_everything
from nlbsuite.data import PhaseData, Rates
from nlbsuite.training import Schedule, split_trials, torch_device, train, training_arrays


def context_mask(n_bins: int, forward: int, backward: int) -> torch.Tensor:
    """(query, key) additive attention mask: 0 where bin ``j`` may be seen from bin ``i``
    (``i - backward <= j <= i + forward``; a negative limit means unlimited), else -inf."""
    i = torch.arange(n_bins)[:, None]
    j = torch.arange(n_bins)[None, :]
    ok = torch.ones(n_bins, n_bins, dtype=torch.bool)
    if forward >= 0:
        ok &= j - i <= forward
    if backward >= 0:
        ok &= i - j <= backward
    return torch.zeros(n_bins, n_bins).masked_fill(~ok, float("-inf"))


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """(position, dim) sine/cosine position code (Vaswani et al.), odd ``dim`` allowed."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n_positions, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


def tfixup_(layer: nn.TransformerEncoderLayer, n_layers: int) -> None:
    """NDT's ``FIXUP_INIT`` (after T-Fixup, Huang et al. 2020): the feed-forward and
    attention-output weights of one layer times ``0.67 L^-1/4``. (Their code also names a
    ``self_attn.v_proj.weight`` to scale by a further sqrt(2), a parameter torch's attention
    does not have when query, key and value share a width, so it is left as is here too.)"""
    scale = 0.67 * n_layers ** (-0.25)
    with torch.no_grad():
        for w in (layer.linear1.weight, layer.linear2.weight, layer.self_attn.out_proj.weight):
            w.mul_(scale)


def pad_inputs(heldin: torch.Tensor, n_heldout: int, n_forward: int) -> torch.Tensor:
    """(batch, T + F, n_in + n_out): held-in spikes (batch, T, n_in) with zeros for the
    held-out neurons and the forward bins (all of them always "masked")."""
    b, t, n = heldin.shape
    out = heldin.new_zeros(b, t + n_forward, n + n_heldout)
    out[:, :t, :n] = heldin
    return out


def expand_spans(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Widen each masked bin of ``mask`` (batch, T, ...) bool to a span of ``width`` bins
    centred on it (NDT's ``expand_mask``)."""
    if width <= 1:
        return mask
    shape = mask.shape
    m = mask.transpose(1, -1).reshape(-1, 1, shape[1]).float()  # (batch*..., 1, T)
    kernel = torch.ones(1, 1, width, device=mask.device)
    wide = F.conv1d(m, kernel, padding=width // 2)[..., : shape[1]].clamp(0, 1)
    return wide.reshape(*mask.transpose(1, -1).shape).transpose(1, -1) > 0


def mask_batch(
    spikes: torch.Tensor,
    *,
    ratio: float,
    mode: str,
    token_ratio: float,
    random_ratio: float,
    max_span: int,
    expand_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking of held-in spikes (batch, T, n_in): ``(inputs, masked)``.

    Entries are chosen per time bin (``mode="timestep"``: all neurons of a bin) or per entry
    (``"full"``) with probability ``ratio`` (``ratio / width`` when, with probability
    ``expand_prob``, spans of a random width up to ``max_span`` are masked). A chosen entry
    is zeroed with probability ``token_ratio``, else replaced by a random count in
    ``[0, max count)`` with probability ``random_ratio``, else left as is.
    """
    dev = spikes.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=dev)

    width = 1
    if max_span > 1 and rand(1).item() < expand_prob:
        width = int(torch.randint(1, max_span + 1, (1,), generator=generator, device=dev))
    p = ratio / width
    b, t, n = spikes.shape
    chosen = rand(b, t, 1) < p if mode == "timestep" else rand(b, t, n) < p
    masked = expand_spans(chosen, width).expand(b, t, n)
    replaced = masked & (rand(b, t, n) < token_ratio)
    randomised = masked & ~replaced & (rand(b, t, n) < random_ratio)
    top = max(int(spikes.max().item()), 1)
    noise = torch.randint(0, top, (b, t, n), generator=generator, device=dev).to(spikes.dtype)
    inputs = torch.where(replaced, torch.zeros_like(spikes), spikes)
    inputs = torch.where(randomised, noise, inputs)
    return inputs, masked


class NDTNet(nn.Module):
    """Pre-norm transformer encoder over time bins; tokens are the population vectors.

    ``n_neurons``: held-in + held-out (the input's held-out columns are zeros); ``n_bins``:
    observed + forward bins. The model width is ``n_neurons`` (identity embedding, NDT's
    ``EMBED_DIM: 0``) rounded up to a multiple of ``n_heads`` with zero columns, or
    ``embed_dim`` with a linear embedding.
    """

    def __init__(self, n_neurons: int, n_bins: int, cfg: NDTConfig) -> None:
        super().__init__()
        self.n_neurons = n_neurons
        if cfg.embed_dim > 0:
            self.width = cfg.embed_dim
            self.embedder: nn.Module = nn.Linear(n_neurons, cfg.embed_dim)
        else:
            self.width = -(-n_neurons // cfg.n_heads) * cfg.n_heads
            self.embedder = nn.Identity()
        self.scale = math.sqrt(self.width)
        if cfg.learnable_position:
            self.position = nn.Parameter(torch.randn(n_bins, self.width))  # nn.Embedding init
        else:
            self.register_buffer("position", sinusoidal_positions(n_bins, self.width))
        self.embed_dropout = nn.Dropout(cfg.dropout_embedding)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                self.width, cfg.n_heads, cfg.ff_dim, cfg.dropout, activation="relu",
                batch_first=True, norm_first=True,
            )
            for _ in range(cfg.n_layers)
        )  # fmt: skip
        if cfg.fixup_init:
            for layer in self.layers:
                tfixup_(layer, cfg.n_layers)
        self.norm = nn.LayerNorm(self.width)
        self.rate_dropout = nn.Dropout(cfg.dropout_rates)
        self.readout = nn.Linear(self.width, n_neurons)
        nn.init.uniform_(self.readout.weight, -0.1, 0.1)
        nn.init.zeros_(self.readout.bias)
        self.register_buffer(
            "attn_mask", context_mask(n_bins, cfg.context_forward, cfg.context_backward)
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, T, width) scaled embedding of inputs ``x`` (batch, T, n_neurons)."""
        if isinstance(self.embedder, nn.Identity) and self.width > self.n_neurons:
            x = F.pad(x, (0, self.width - self.n_neurons))
        return self.embedder(x) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-rates (batch, T, n_neurons) for inputs ``x`` (batch, T, n_neurons)."""
        h = self.embed_dropout(self.embed(x) + self.position)
        for layer in self.layers:
            h = layer(h, src_mask=self.attn_mask)
        return self.readout(self.rate_dropout(self.norm(h)))

    def auxiliary_loss(self, heldin: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Extra training loss for a batch of raw held-in spikes (none for NDT)."""
        return heldin.new_zeros(())


# ----------------------------------------------------------------------------------------
# Training and prediction (shared with STNDT)
# ----------------------------------------------------------------------------------------


def span_probability(step: int, start: int, end: int) -> float:
    """Probability of masking spans at ``step``: 0 before ``start``, 1 after ``end``,
    linear between (NDT's span ramp)."""
    if step < start:
        return 0.0
    return 1.0 if end <= start else min(1.0, (step - start) / (end - start))


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """LR factor per step: linear warm-up over ``warmup`` steps, then cosine decay to 0 at
    ``total`` (the ``get_cosine_schedule_with_warmup`` rule of NDT's runner)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def step_schedule(cfg: NDTConfig, n_fit: int) -> tuple[Schedule, int]:
    """The shared loop's epoch :class:`Schedule` for ``cfg``'s step counts (``n_steps``,
    ``val_every``, ``patience``, each rounded to whole epochs) and the steps per epoch."""
    per_epoch = math.ceil(n_fit / cfg.batch_size)
    schedule = Schedule(
        epochs=max(1, math.ceil(cfg.n_steps / per_epoch)),
        batch_size=cfg.batch_size,
        validate_every=max(1, round(cfg.val_every / per_epoch)),
        patience=None if cfg.patience is None else max(1, math.ceil(cfg.patience / per_epoch)),
        grad_clip=cfg.grad_clip,
    )
    return schedule, per_epoch


def fit(model: NDT, data: PhaseData) -> None:
    seed_everything(model.seed)
    cfg = model._cfg = model._resolved_config(data)
    device = torch_device(cfg.device)
    gen = torch.Generator(device=device).manual_seed(model.seed)
    n_in, n_out, n_fwd = data.n_heldin, data.n_heldout, data.n_forward
    model._sizes = (n_in, n_out, data.n_bins, n_fwd)
    net = model._build_net(n_in + n_out, data.n_bins + n_fwd)
    with torch.no_grad():  # start at each neuron's mean rate (log of mean count per bin)
        mean_count = data.train_spikes_full().mean(axis=(0, 1))
        net.readout.bias.copy_(torch.as_tensor(np.log(np.maximum(mean_count, 1e-3))))
    model._net = net = net.to(device)

    x_all, y_all, a_all = (
        torch.as_tensor(a, dtype=torch.float32, device=device)
        for a in training_arrays(data, cfg.use_eval_heldin)
    )
    n_train = data.train_spikes_heldin.shape[0]
    fit_idx, valid_idx = split_trials(
        n_train, cfg.valid_fraction, np.random.default_rng(model.seed)
    )
    fit_idx = np.concatenate([fit_idx, np.arange(n_train, x_all.shape[0])])
    # Validation: co-smoothing NLL (held-out neurons, forward bins) of unmasked inputs.
    co_mask = torch.ones(y_all.shape[1:], device=device)
    co_mask[: data.n_bins, :n_in] = 0.0
    valid_x = pad_inputs(x_all[valid_idx], n_out, n_fwd)
    valid_y = y_all[valid_idx]
    steps = [0]  # optimizer steps so far (the span ramp counts steps)

    def loss_fn(batch: torch.Tensor, epoch: int) -> torch.Tensor:
        heldin = x_all[batch]
        inputs, masked = mask_batch(
            heldin, ratio=cfg.mask_ratio, mode=cfg.mask_mode, token_ratio=cfg.mask_token_ratio,
            random_ratio=cfg.mask_random_ratio, max_span=cfg.mask_max_span,
            expand_prob=span_probability(steps[0], cfg.span_ramp_start, cfg.span_ramp_end),
            generator=gen,
        )  # fmt: skip
        steps[0] += 1
        labels = torch.ones_like(y_all[batch])
        labels[:, : data.n_bins, :n_in] = masked.float()
        labels = labels * a_all[batch]
        log_rates = net(pad_inputs(inputs, n_out, n_fwd))
        nll = F.poisson_nll_loss(log_rates, y_all[batch], log_input=True, reduction="none")
        loss = (nll * labels).sum() / labels.sum().clamp(min=1.0)
        return loss + net.auxiliary_loss(heldin, gen)

    @torch.no_grad()
    def valid_fn() -> float:
        net.eval()
        log_rates = torch.cat([net(chunk) for chunk in valid_x.split(cfg.batch_size)])
        nll = F.poisson_nll_loss(log_rates, valid_y, log_input=True, reduction="none")
        return float((nll * co_mask).sum() / (co_mask.sum() * len(valid_y)))

    schedule, per_epoch = step_schedule(cfg, len(fit_idx))
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.warmup_steps, schedule.epochs * per_epoch)
    )
    history = train(
        net, optimizer, loss_fn, fit_idx, schedule, shuffle=gen,
        validate=valid_fn if len(valid_idx) else None, metric="valid_co_nll",
        scheduler=scheduler, scheduler_interval="step", desc=model.info.name,
    )  # fmt: skip
    model.history = history
    model.extras = {
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.train["loss"]),
        "steps_run": steps[0],
        "best_valid_co_nll": round(history.best_value, 6) if history.valid else None,
        "torch_threads": torch.get_num_threads(),
    }


@torch.no_grad()
def predict(model: NDT, data: PhaseData) -> Rates:
    net = model._net
    net.eval()
    device = next(net.parameters()).device
    n_in, n_out, n_bins, n_fwd = model._sizes
    out = []
    for spikes in (data.train_spikes_heldin, data.eval_spikes_heldin):
        x = pad_inputs(torch.tensor(spikes, dtype=torch.float32, device=device), n_out, n_fwd)
        log_rates = torch.cat([net(chunk) for chunk in x.split(model._cfg.batch_size)])
        out.append(log_rates.double().exp().cpu().numpy())
    return Rates.from_full(out[0], out[1], n_in, n_bins)
