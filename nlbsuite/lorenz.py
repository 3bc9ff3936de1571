"""Lorenz synthetic data with ground truth, in the style of LFADS' synthetic benchmarks.

A Lorenz system (sigma 10, rho 28, beta 8/3) is integrated with a fixed RK4 step on a 1 ms
grid. Each *condition* is one initial state on the attractor; all trials of a condition share
the latent trajectory and differ only in Poisson noise. Latents are z-scored per dimension
(over all conditions and time); log firing rate per ms = W z + b; expected counts per bin are
the summed per-ms rates, and spike counts are Poisson draws of those. A forward window
(default 200 ms) follows each trial. Everything is deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nlbsuite.catalog import check_phase
from nlbsuite.data import EvalTarget, GroundTruth, PhaseData
from nlbsuite.errors import require


@dataclass(frozen=True)
class LorenzSpec:
    """Size and statistics of a Lorenz dataset. Times in ms, rates in Hz.

    ``speed``: Lorenz time units advanced per ms (0.0015 gives about two loops per second).
    """

    n_conditions: int = 65
    trials_per_condition: int = 20
    trial_ms: int = 1000
    forward_ms: int = 200
    bin_width_ms: int = 20
    n_neurons: int = 30
    heldout_fraction: float = 0.25
    base_rate_hz: float = 15.0
    log_rate_gain: float = 0.8
    speed: float = 0.0015
    val_fraction: float = 0.15
    test_fraction: float = 0.15


LORENZ_SIZES: dict[str, LorenzSpec] = {
    "default": LorenzSpec(),
    "tiny": LorenzSpec(n_conditions=8, trials_per_condition=6, trial_ms=400, forward_ms=100),
}


def lorenz_trajectories(
    initial: np.ndarray,
    n_steps: int,
    step: float,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
) -> np.ndarray:
    """RK4-integrate many Lorenz systems at once.

    ``initial``: (condition, 3). Returns (condition, n_steps, 3), the first step = initial.
    """

    def f(s: np.ndarray) -> np.ndarray:
        x, y, z = s[:, 0], s[:, 1], s[:, 2]
        return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=1)

    out = np.empty((initial.shape[0], n_steps, 3))
    s = initial.astype(np.float64)
    for t in range(n_steps):
        out[:, t] = s
        k1 = f(s)
        k2 = f(s + 0.5 * step * k1)
        k3 = f(s + 0.5 * step * k2)
        k4 = f(s + step * k3)
        s = s + step / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return out


def make_lorenz(
    phase: str = "val",
    seed: int = 0,
    size: str | LorenzSpec = "default",
    bin_width_ms: int | None = None,
) -> PhaseData:
    """Lorenz :class:`PhaseData` for ``phase`` ("val": train vs val trials; "test": train+val
    vs test trials), with true rates and latents in ``truth``.

    The same ``seed`` and spec always give the same spikes; the trial split is stratified by
    condition, so every condition appears in train and eval.
    """
    spec = LORENZ_SIZES[size] if isinstance(size, str) else size
    bin_ms = bin_width_ms or spec.bin_width_ms
    check_phase(phase)
    require(
        spec.trial_ms % bin_ms == 0 and spec.forward_ms % bin_ms == 0,
        f"the bin width (ms) must divide the trial ({spec.trial_ms} ms) and forward "
        f"({spec.forward_ms} ms) lengths",
        "bin_width_ms",
        bin_ms,
    )
    rng = np.random.default_rng(seed)
    total_ms = spec.trial_ms + spec.forward_ms

    # Initial states on the attractor: burn in from random starts.
    start = rng.uniform([-15, -15, 10], [15, 15, 40], size=(spec.n_conditions, 3))
    burn = lorenz_trajectories(start, 1000, 0.005)
    latents_ms = lorenz_trajectories(burn[:, -1], total_ms, spec.speed)  # (cond, ms, 3)
    latents_ms = (latents_ms - latents_ms.mean(axis=(0, 1))) / latents_ms.std(axis=(0, 1))

    # log rate per ms = W z + b
    weights = rng.normal(size=(3, spec.n_neurons))
    weights *= spec.log_rate_gain / (latents_ms @ weights).std(axis=(0, 1))  # log-rate sd = gain
    base = np.log(spec.base_rate_hz / 1000.0) + rng.normal(0.0, 0.3, size=spec.n_neurons)
    rate_ms = np.exp(latents_ms @ weights + base)  # (cond, ms, neuron), spikes per ms
    n_bins = total_ms // bin_ms
    cond_rates = rate_ms.reshape(spec.n_conditions, n_bins, bin_ms, -1).sum(axis=2)
    cond_latents = latents_ms.reshape(spec.n_conditions, n_bins, bin_ms, 3).mean(axis=2)

    n_trials = spec.n_conditions * spec.trials_per_condition
    cond_of_trial = np.repeat(np.arange(spec.n_conditions), spec.trials_per_condition)
    rates = cond_rates[cond_of_trial]  # (trial, bin, neuron)
    spikes = rng.poisson(rates).astype(np.float64)

    # Held-out neurons and stratified train/val/test split.
    n_heldout = max(1, round(spec.heldout_fraction * spec.n_neurons))
    order = rng.permutation(spec.n_neurons)
    heldin, heldout = np.sort(order[n_heldout:]), np.sort(order[:n_heldout])
    split = np.empty(n_trials, dtype=object)
    n_val = max(1, round(spec.val_fraction * spec.trials_per_condition))
    n_test = max(1, round(spec.test_fraction * spec.trials_per_condition))
    for c in range(spec.n_conditions):
        idx = rng.permutation(np.flatnonzero(cond_of_trial == c))
        split[idx[:n_val]] = "val"
        split[idx[n_val : n_val + n_test]] = "test"
        split[idx[n_val + n_test :]] = "train"
    if phase == "val":
        train, evals = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    else:
        train, evals = np.flatnonzero(split != "test"), np.flatnonzero(split == "test")

    nb = spec.trial_ms // bin_ms

    def cut(a: np.ndarray, trials: np.ndarray, neurons: np.ndarray, fwd: bool) -> np.ndarray:
        window = slice(nb, None) if fwd else slice(0, nb)
        return np.ascontiguousarray(a[trials][:, window][:, :, neurons])

    all_neurons = np.concatenate([heldin, heldout])
    psth = cond_rates[:, :nb][:, :, all_neurons]
    eval_cond = cond_of_trial[evals]
    eval_cond_idx = [np.flatnonzero(eval_cond == c) for c in range(spec.n_conditions)]
    target = EvalTarget(
        eval_spikes_heldout=cut(spikes, evals, heldout, False),
        eval_spikes_heldin_forward=cut(spikes, evals, heldin, True),
        eval_spikes_heldout_forward=cut(spikes, evals, heldout, True),
        psth=psth,
        eval_cond_idx=eval_cond_idx,
    )
    truth = GroundTruth(
        train_rates_heldin=cut(rates, train, heldin, False),
        train_rates_heldout=cut(rates, train, heldout, False),
        eval_rates_heldin=cut(rates, evals, heldin, False),
        eval_rates_heldout=cut(rates, evals, heldout, False),
        eval_rates_heldin_forward=cut(rates, evals, heldin, True),
        eval_rates_heldout_forward=cut(rates, evals, heldout, True),
        train_latents=cond_latents[cond_of_trial[train]][:, :nb],
        eval_latents=cond_latents[cond_of_trial[evals]][:, :nb],
    )
    return PhaseData(
        dataset="lorenz"
        if size == "default"
        else f"lorenz_{size}"
        if isinstance(size, str)
        else "lorenz_custom",
        bin_width_ms=bin_ms,
        phase=phase,
        train_spikes_heldin=cut(spikes, train, heldin, False),
        train_spikes_heldout=cut(spikes, train, heldout, False),
        eval_spikes_heldin=cut(spikes, evals, heldin, False),
        train_spikes_heldin_forward=cut(spikes, train, heldin, True),
        train_spikes_heldout_forward=cut(spikes, train, heldout, True),
        target=target,
        truth=truth,
        source=f"lorenz(size={size if isinstance(size, str) else 'custom'}, seed={seed})",
        meta={
            "spec": asdict(spec),
            "seed": seed,
            "train_conditions": cond_of_trial[train],
            "eval_conditions": eval_cond,
        },
    )
