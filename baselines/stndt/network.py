"""STNDT's torch network: NDT's temporal layers plus spatial (across-neuron) attention and
the contrastive loss (see :mod:`baselines.stndt`). Masking, training and prediction are
NDT's (:mod:`baselines.ndt.network`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from baselines.ndt.network import (
    context_mask,
    fit,
    mask_batch,
    pad_inputs,
    predict,
    sinusoidal_positions,
    tfixup_,
)
from baselines.stndt import STNDTConfig

__all__ = ["STNDTLayer", "STNDTNet", "SpatialAttention", "fit", "info_nce", "predict"]


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's InfoNCE loss of two views ``a``, ``b`` (batch, feature): each row's positive
    is its other view, every other row of either view a negative; cosine similarity over
    ``temperature``; cross-entropy averaged over the ``2 * batch`` rows."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    n = a.shape[0]
    sim = (z @ z.T / temperature).masked_fill(
        torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf")
    )
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


class SpatialAttention(nn.Module):
    """Head-averaged attention weights (batch, token, token) among neuron tokens of
    ``dim`` features (``softmax(q k^T / sqrt(head_dim))``, the weights torch's attention
    returns); only the weights are used, so there is no value projection."""

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = -(-dim // n_heads)
        self.query = nn.Linear(dim, n_heads * self.head_dim)
        self.key = nn.Linear(dim, n_heads * self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.query(x).view(b, n, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.key(x).view(b, n, self.n_heads, self.head_dim).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim), dim=-1)
        return weights.mean(dim=1)


class STNDTLayer(nn.Module):
    """One spatiotemporal layer: NDT's pre-norm temporal block, then the population vector
    of each bin mixed across neurons by spatial attention weights computed from the
    spatial stream (batch, neuron, time), then a second feed-forward block."""

    def __init__(self, width: int, n_bins: int, cfg: STNDTConfig) -> None:
        super().__init__()
        self.temporal = nn.TransformerEncoderLayer(
            width, cfg.n_heads, cfg.ff_dim, cfg.dropout, activation="relu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        if cfg.fixup_init:
            tfixup_(self.temporal, cfg.n_layers)
        self.spatial_norm = nn.LayerNorm(n_bins)
        self.spatial_attn = SpatialAttention(n_bins, cfg.n_heads)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.linear1 = nn.Linear(width, cfg.ff_dim)
        self.linear2 = nn.Linear(cfg.ff_dim, width)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)

    def forward(
        self, src: torch.Tensor, spatial: torch.Tensor, attn_mask: torch.Tensor
    ) -> torch.Tensor:
        """(batch, T, width) output for temporal input ``src`` (batch, T, width) and
        spatial input ``spatial`` (batch, width, T)."""
        src = self.temporal(src, src_mask=attn_mask)
        weights = self.spatial_attn(self.spatial_norm(spatial))  # (batch, width, width)
        mixed = src + self.dropout1(self.norm1(src) @ weights.transpose(1, 2))
        ff = self.linear2(self.dropout2(F.relu(self.linear1(self.norm2(mixed)))))
        return mixed + self.dropout3(ff)


class STNDTNet(nn.Module):
    """Spatiotemporal transformer: linear embeddings of the population vectors (temporal
    stream) and of each neuron's time course (spatial stream), ``n_layers``
    :class:`STNDTLayer`, final LayerNorm and linear readout to log-rates."""

    def __init__(self, n_neurons: int, n_bins: int, cfg: STNDTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_neurons, self.n_bins = n_neurons, n_bins
        self.width = -(-n_neurons // cfg.n_heads) * cfg.n_heads
        self.embedder = nn.Linear(self.width, self.width)
        self.spatial_embedder = nn.Linear(n_bins, n_bins)
        self.scale, self.spatial_scale = math.sqrt(self.width), math.sqrt(n_bins)
        if cfg.learnable_position:
            self.position = nn.Parameter(torch.randn(n_bins, self.width))  # nn.Embedding init
        else:
            self.register_buffer("position", sinusoidal_positions(n_bins, self.width))
        self.register_buffer("spatial_position", sinusoidal_positions(self.width, n_bins))
        self.embed_dropout = nn.Dropout(cfg.dropout_embedding)
        self.spatial_dropout = nn.Dropout(cfg.dropout_embedding)
        self.layers = nn.ModuleList(STNDTLayer(self.width, n_bins, cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(self.width)
        self.rate_dropout = nn.Dropout(cfg.dropout_rates)
        self.readout = nn.Linear(self.width, n_neurons)
        nn.init.uniform_(self.readout.weight, -0.1, 0.1)
        nn.init.zeros_(self.readout.bias)
        self.register_buffer(
            "attn_mask", context_mask(n_bins, cfg.context_forward, cfg.context_backward)
        )

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled temporal (batch, T, width) and spatial (batch, width, T) embeddings of
        inputs ``x`` (batch, T, n_neurons), before positions (the contrastive features)."""
        x = F.pad(x, (0, self.width - self.n_neurons))
        return self.embedder(x) * self.scale, self.spatial_embedder(x.transpose(1, 2)) * (
            self.spatial_scale
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-rates (batch, T, n_neurons) for inputs ``x`` (batch, T, n_neurons)."""
        temporal, spatial = self.embed(x)
        src = self.embed_dropout(temporal + self.position)
        spatial = self.spatial_dropout(spatial + self.spatial_position)
        for i, layer in enumerate(self.layers):
            src = layer(src, spatial if i == 0 else src.transpose(1, 2), self.attn_mask)
        return self.readout(self.rate_dropout(self.norm(src)))

    def auxiliary_loss(self, heldin: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``contrast_weight`` x (InfoNCE of the temporal + of the spatial embeddings) of two
        randomly masked views of the held-in spikes (batch, T_obs, n_in)."""
        cfg = self.cfg
        if cfg.contrast_weight <= 0 or heldin.shape[0] < 2:
            return heldin.new_zeros(())
        views = []
        for _ in range(2):
            x, _ = mask_batch(
                heldin, ratio=cfg.contrast_mask_ratio, mode=cfg.contrast_mask_mode,
                token_ratio=cfg.contrast_token_ratio, random_ratio=cfg.contrast_random_ratio,
                max_span=1, expand_prob=0.0, generator=generator,
            )  # fmt: skip
            n_out = self.n_neurons - heldin.shape[2]
            views.append(self.embed(pad_inputs(x, n_out, self.n_bins - heldin.shape[1])))
        (t1, s1), (t2, s2) = views
        loss = info_nce(t1.flatten(1), t2.flatten(1), cfg.temperature)
        loss = loss + info_nce(s1.flatten(1), s2.flatten(1), cfg.temperature)
        return cfg.contrast_weight * loss
