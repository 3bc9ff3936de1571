"""A small step-based torch training loop shared by the deep baselines (NDT, STNDT, LFADS).

Stand-in for ``nlbsuite.training`` until that lands: the models call only :func:`split_trials`
and :func:`train`, so swapping the loop is a change of import. The loop shuffles the
training trials each pass, takes ``n_steps`` optimizer steps of ``batch_size`` trials, checks
a validation metric (lower is better; train trials held out inside ``fit``, never eval or
test trials) every ``val_every`` steps, keeps the best weights and stops early after
``patience`` steps without improvement.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def split_trials(n_train: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, valid) sorted index arrays: a seeded ``valid_fraction`` of ``n_train`` trials
    (at least one when there are two or more) is held out for validation."""
    perm = np.random.default_rng(seed).permutation(n_train)
    n_valid = max(1, round(valid_fraction * n_train)) if n_train > 1 and valid_fraction > 0 else 0
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


@dataclass
class TrainLog:
    """What a :func:`train` call did: per-step training loss, ``(step, metric)`` checks, the
    best step and metric, steps run and wall seconds."""

    train_loss: list[float] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = -1
    best_valid: float = math.inf
    steps_run: int = 0
    seconds: float = 0.0


def train(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, int], torch.Tensor],
    valid_fn: Callable[[], float] | None,
    fit_idx: np.ndarray,
    *,
    batch_size: int,
    n_steps: int,
    val_every: int,
    generator: torch.Generator,
    grad_clip: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    patience: int | None = None,
    desc: str = "train",
) -> TrainLog:
    """Run ``n_steps`` steps of ``loss_fn(batch_indices, step)``; restore the best weights.

    ``valid_fn`` (None: no validation, the last weights are kept) is called in ``eval`` mode
    every ``val_every`` steps and after the last step; ``scheduler`` steps once per step.
    """
    log = TrainLog()
    start = time.perf_counter()
    idx = torch.as_tensor(fit_idx, dtype=torch.long)
    best_state = copy.deepcopy(net.state_dict())
    order = idx[torch.randperm(len(idx), generator=generator)]
    pos = 0
    bar = tqdm(range(n_steps), desc=desc, disable=None, leave=False)
    for step in bar:
        if pos >= len(order):
            order, pos = idx[torch.randperm(len(idx), generator=generator)], 0
        batch = order[pos : pos + batch_size]
        pos += batch_size
        net.train()
        loss = loss_fn(batch, step)
        optimizer.zero_grad()
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        log.train_loss.append(float(loss.item()))
        log.steps_run = step + 1
        last = step + 1 == n_steps
        if valid_fn is not None and ((step + 1) % val_every == 0 or last):
            net.eval()
            with torch.no_grad():
                metric = float(valid_fn())
            log.valid.append((step, metric))
            if metric < log.best_valid:
                log.best_valid, log.best_step = metric, step
                best_state = copy.deepcopy(net.state_dict())
            bar.set_postfix(loss=f"{log.train_loss[-1]:.4f}", valid=f"{metric:.4f}")
            if patience is not None and step - log.best_step >= patience:
                break
    if valid_fn is not None:
        net.load_state_dict(best_state)
    else:
        log.best_step = log.steps_run - 1
    net.eval()
    log.seconds = time.perf_counter() - start
    return log


def warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    """LR factor per step: linear warm-up over ``warmup`` steps, then cosine decay to 0 at
    ``total`` (the ``get_cosine_schedule_with_warmup`` rule NDT uses)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))

    return factor
