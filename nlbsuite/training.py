"""The shared torch training loop and the suite's sample-averaging rule (optional for models).

A torch model gives :func:`train` its network, optimizer and a per-batch loss; the loop owns
the rest: shuffling, epochs (and passes over small data sets), gradient clipping, the LR
scheduler, validation on a named metric, early stopping, restoring the best checkpoint,
mixed precision on CUDA, a progress bar and the per-epoch history. Example::

    from nlbsuite.training import Schedule, poisson_nll, split_trials, torch_device, train

    device = torch_device(config.device)                  # "auto" -> cuda if available
    gen = torch.Generator(device=device).manual_seed(seed)
    fit_idx, valid_idx = split_trials(n_train, 0.1, np.random.default_rng(seed))
    net = MyNet(...).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss_fn(batch, epoch):                            # batch: trial indices (tensor)
        log_rates = net(x[batch])
        return F.poisson_nll_loss(log_rates, y[batch], log_input=True)

    def validate():                                       # lower is better
        net.eval()
        with torch.no_grad():
            return poisson_nll(net(x[valid_idx]).exp(), y[valid_idx])

    history = train(net, opt, loss_fn, fit_idx, Schedule(epochs=50, batch_size=32),
                    shuffle=gen, validate=validate, metric="valid_nll")
    # history.best_epoch, history.valid, history.train["loss"]; net holds the best weights

The sample-averaging rule (:data:`SAMPLE_AVERAGING`, :func:`average_rates`): a stochastic
model's prediction is the mean over posterior samples of the *rates* (expected counts per
bin), never of the log-rates. NLB scores expected counts under a Poisson likelihood; the
posterior-predictive expected count is the mean of the sampled rates, and it is what
lfads-torch's ``run_posterior_sampling`` averages for NLB submissions (its output rates).
The mean of log-rates (a geometric mean of rates) is biased low by Jensen's inequality,
more so the more uncertain the posterior.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nlbsuite.adapter import resolve_device

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from nlbsuite.data import PhaseData

#: The one sample-averaging rule of the suite: average rates (expected counts), see above.
SAMPLE_AVERAGING = "mean of rates"


def average_rates(samples: Iterable[np.ndarray | torch.Tensor]) -> np.ndarray:
    """The sample-averaging rule: the float64 mean of rate samples (each (trial, time,
    neuron) expected counts, or any shape), accumulated in order. Pass rates, not log-rates.
    """
    total: np.ndarray | None = None
    n = 0
    for sample in samples:
        if hasattr(sample, "detach"):
            sample = sample.detach().cpu().numpy()
        draw = np.asarray(sample, dtype=np.float64)
        total = draw.copy() if total is None else total + draw
        n += 1
    if total is None:
        raise ValueError("average_rates: no samples (n_samples must be at least 1)")
    return total / n


def split_trials(
    n_trials: int, valid_fraction: float, rng: np.random.Generator, min_trials: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split of ``n_trials`` train trials: ``(fit, valid)`` sorted
    index arrays. ``valid`` holds ``max(1, round(valid_fraction * n_trials))`` trials drawn
    by ``rng.permutation``, or none when ``valid_fraction`` is 0 or fewer than
    ``min_trials`` trials exist."""
    perm = rng.permutation(n_trials)
    n_valid = (
        max(1, round(valid_fraction * n_trials))
        if valid_fraction > 0 and n_trials >= min_trials
        else 0
    )
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def torch_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"`` / ``"cuda"`` as given."""
    import torch

    return torch.device(resolve_device(device))


def training_arrays(
    data: PhaseData, use_eval_heldin: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-in inputs (trial, T, n_in), full targets and their availability masks
    (trial, T + F, n_in + n_out) for models that learn from every train entry.

    Train trials have every target; with ``use_eval_heldin`` the eval trials are appended
    with only their observed held-in spikes available (the rest masked out).
    """
    full = data.train_spikes_full()
    inputs, targets, masks = [data.train_spikes_heldin], [full], [np.ones_like(full)]
    if use_eval_heldin:
        ev = data.eval_spikes_heldin
        target = np.zeros((ev.shape[0], *full.shape[1:]))
        target[:, : data.n_bins, : data.n_heldin] = ev
        mask = np.zeros_like(target)
        mask[:, : data.n_bins, : data.n_heldin] = 1.0
        inputs.append(ev)
        targets.append(target)
        masks.append(mask)
    return np.concatenate(inputs), np.concatenate(targets), np.concatenate(masks)


def ramp(epoch: int, n_epochs: int) -> float:
    """Linear warm-up factor: 0 at epoch 0, 1 from ``n_epochs`` on (1 throughout if 0)."""
    return min(1.0, epoch / n_epochs) if n_epochs > 0 else 1.0


def poisson_nll(
    rates: torch.Tensor | np.ndarray,
    spikes: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray | None = None,
) -> float:
    """Mean Poisson negative log-likelihood ``rate - spikes * log(rate)`` (no log-factorial)
    over the entries where ``mask`` is true (all if None); shapes (trial, time, neuron);
    torch tensors or NumPy arrays."""
    log = rates.log() if hasattr(rates, "log") else np.log(rates)
    nll = rates - spikes * log
    return float((nll if mask is None else nll[mask]).mean())


@dataclass
class Schedule:
    """How long and how :func:`train` trains.

    ``epochs``: passes of the epoch loop; each epoch shuffles the fitting trials ``passes``
    times over (more optimizer steps per epoch on small data) and steps through them in
    batches of ``batch_size``. ``validate_every``: validate after every k-th epoch and the
    last (an int), or after the listed epoch counts (1 = after the first epoch).
    ``patience``: stop when the validation metric has not improved for this many epochs
    (None: never). ``grad_clip``: max gradient norm (None or 0: no clipping).
    ``restore_best``: end with the weights of the best validation (see :func:`train`).
    ``mixed_precision``: bfloat16 autocast on CUDA; always off on the CPU.
    """

    epochs: int
    batch_size: int
    passes: int = 1
    validate_every: int | Collection[int] = 1
    patience: int | None = None
    grad_clip: float | None = None
    restore_best: bool = True
    mixed_precision: bool = False

    def validates_after(self, epoch: int) -> bool:
        """Whether validation runs after 0-based ``epoch``."""
        done = epoch + 1
        if isinstance(self.validate_every, int):
            return done % max(1, self.validate_every) == 0 or done == self.epochs
        return done in self.validate_every


@dataclass
class History:
    """What :func:`train` did: per-epoch training means (``train[name]``, ``"loss"`` and any
    value the loss function logged, weighted by batch size), validations ``valid`` as
    (epoch, value), the metric's name, the best epoch and value (-1 and inf if never
    validated), whether early stopping ended the run, and the wall time."""

    metric: str
    train: dict[str, list[float]] = field(default_factory=dict)
    valid: list[tuple[int, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_value: float = math.inf
    stopped_early: bool = False
    restored_best: bool = False
    seconds: float = 0.0


def train(
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, int], torch.Tensor | tuple[torch.Tensor, dict[str, float]]],
    trials: np.ndarray,
    schedule: Schedule,
    *,
    shuffle: torch.Generator | np.random.Generator,
    validate: Callable[[], float] | None = None,
    metric: str = "valid_loss",
    scheduler: object | None = None,
    scheduler_interval: str = "epoch",
    on_epoch_start: Callable[[int], None] | None = None,
    desc: str = "train",
) -> History:
    """Train ``module`` on the fitting ``trials`` (indices into the caller's arrays).

    Each step calls ``loss_fn(batch, epoch)`` with ``batch`` a long tensor of trial indices
    on the module's device; it returns the scalar loss, or ``(loss, logs)`` with floats to
    record. ``shuffle`` draws each epoch's order: a torch Generator (``torch.randperm``)
    or a NumPy Generator (``permutation``); pass the generator the model also samples
    with to keep one random stream. ``validate()`` returns the named ``metric``, lower is
    better (negate a likelihood); it may switch the module to eval mode, the loop switches
    it back to train mode each epoch. ``scheduler`` steps after each optimizer step
    (``scheduler_interval="step"``) or epoch (``"epoch"``); a ``ReduceLROnPlateau``
    steps on each validation value instead. ``on_epoch_start(epoch)`` sets per-epoch
    values (KL or weight-decay warm-ups, see :func:`ramp`).

    Best checkpoint: after a validation that improves on the best so far, the module's
    ``state_dict`` (parameters and buffers) is copied; with ``schedule.restore_best`` the
    module ends with those weights. The optimizer and scheduler states are not restored.
    The module is left in eval mode.
    """
    import torch
    from tqdm.auto import tqdm

    device = next(module.parameters()).device
    amp = schedule.mixed_precision and device.type == "cuda"
    history = History(metric=metric)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    best_state: dict[str, torch.Tensor] | None = None
    trials_t = torch.as_tensor(np.asarray(trials), device=device)
    start = time.perf_counter()
    bar = tqdm(range(schedule.epochs), desc=desc, disable=None, leave=False)
    for epoch in bar:
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        module.train()
        sums: dict[str, float] = {}
        count = 0
        for batch in _batches(trials, trials_t, schedule, shuffle, device):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = loss_fn(batch, epoch)
            loss, logs = out if isinstance(out, tuple) else (out, {})
            optimizer.zero_grad()
            loss.backward()
            if schedule.grad_clip:
                torch.nn.utils.clip_grad_norm_(module.parameters(), schedule.grad_clip)
            optimizer.step()
            if scheduler is not None and not plateau and scheduler_interval == "step":
                scheduler.step()
            n = len(batch)
            for name, value in {"loss": float(loss.detach()), **logs}.items():
                sums[name] = sums.get(name, 0.0) + float(value) * n
            count += n
        for name, total in sums.items():
            history.train.setdefault(name, []).append(total / max(count, 1))
        if scheduler is not None and not plateau and scheduler_interval == "epoch":
            scheduler.step()
        postfix = {"loss": f"{history.train['loss'][-1]:.4f}"} if "loss" in history.train else {}
        if validate is not None and schedule.validates_after(epoch):
            value = float(validate())
            history.valid.append((epoch, value))
            if value < history.best_value:
                history.best_value, history.best_epoch = value, epoch
                best_state = copy.deepcopy(module.state_dict())
            if plateau:
                scheduler.step(value)  # type: ignore[union-attr]
            postfix[metric] = f"{value:.4f}"
            if schedule.patience is not None and epoch - history.best_epoch >= schedule.patience:
                history.stopped_early = True
                bar.set_postfix(postfix)
                break
        bar.set_postfix(postfix)
    if schedule.restore_best and best_state is not None:
        module.load_state_dict(best_state)
        history.restored_best = True
    module.eval()
    history.seconds = time.perf_counter() - start
    return history


def _batches(
    trials: np.ndarray,
    trials_t: torch.Tensor,
    schedule: Schedule,
    shuffle: torch.Generator | np.random.Generator,
    device: torch.device,
) -> Iterable[torch.Tensor]:
    """One epoch's batches of trial indices: ``schedule.passes`` shuffled copies, in order."""
    import torch

    if isinstance(shuffle, np.random.Generator):
        order = np.concatenate([shuffle.permutation(trials) for _ in range(schedule.passes)])
        for s in range(0, len(order), schedule.batch_size):
            yield torch.as_tensor(order[s : s + schedule.batch_size], device=device)
        return
    n = len(trials_t)
    order_t = torch.cat(
        [
            trials_t[torch.randperm(n, generator=shuffle, device=shuffle.device)]
            for _ in range(schedule.passes)
        ]
    )
    yield from order_t.split(schedule.batch_size)
