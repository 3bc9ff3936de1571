"""Stochastic low-rank RNN fit by variational sequential Monte Carlo (Pals et al. 2024).

``LowRankRNN`` (the adapter, needs torch) is imported lazily so that the NumPy-only
fixed-point finder in :mod:`baselines.lowrank_rnn.fixed_points` works without torch.
"""

from __future__ import annotations

from typing import Any

from baselines.lowrank_rnn.fixed_points import (
    FixedPoints,
    PiecewiseLinearRNN,
    brute_force_fixed_points,
    find_fixed_points,
)

__all__ = [
    "FixedPoints",
    "LowRankRNN",
    "LowRankRNNConfig",
    "PiecewiseLinearRNN",
    "brute_force_fixed_points",
    "find_fixed_points",
]


def __getattr__(name: str) -> Any:
    if name in ("LowRankRNN", "LowRankRNNConfig"):
        from baselines.lowrank_rnn import model

        return getattr(model, name)
    raise AttributeError(f"module 'baselines.lowrank_rnn' has no attribute '{name}'")
