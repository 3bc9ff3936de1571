"""Synthetic NLB eval targets and submissions in nlb_tools' exact layouts, at any size.

``make_case(key, n_train, n_eval, seed, kind)`` returns ``(target_group, submission_group)``
for one dataset key, shaped like nlb_tools' ``make_eval_target_tensors`` output and an EvalAI
submission: MC_Maze and scaled MC_Maze with PSTHs; MC_RTT without PSTHs and with NaN
behaviour at some trial ends; Area2_Bump with two decode masks; DMFC_RSG with NaN-padded
front windows, trial-table behaviour (is_eye, theta, is_short, ts, tp) with NaN outlier
rows, jitter (val phase) and no train rates. ``kind``: "structured" (rates near the truth),
"random" (unrelated rates) or "zeros" (structured with exact zeros).
"""

from __future__ import annotations

import numpy as np

from nlbsuite.catalog import DatasetKey, official_cards

FULL_SIZES = {  # (train trials, eval trials) of the NLB test phase
    c.name: c.test_sizes for c in official_cards() if c.test_sizes is not None
}


def _latents(rng: np.random.Generator, n_cond: int, n_bins: int, dim: int = 3) -> np.ndarray:
    """Smooth condition latents: (condition, time, dim)."""
    t = np.linspace(0, 1, n_bins)
    freq = rng.uniform(0.5, 2.0, size=(n_cond, 1, dim))
    phase = rng.uniform(0, 2 * np.pi, size=(n_cond, 1, dim))
    return np.sin(2 * np.pi * freq * t[None, :, None] + phase)


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        out[i] = x
    return out


def make_case(
    key: str,
    n_train: int = 40,
    n_eval: int = 20,
    seed: int = 0,
    kind: str = "structured",
    phase: str = "val",
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(target group, submission group) for ``key`` (e.g. ``mc_maze_20``)."""
    dataset_key = DatasetKey.parse(key)
    card, bin_ms = dataset_key.card, dataset_key.bin_width_ms
    shape = card.shape
    n_bins, n_fwd = shape.bins(bin_ms)
    n_in, n_out = shape.n_heldin, shape.n_heldout
    n_neurons = n_in + n_out
    rng = np.random.default_rng(seed)
    n_trials = n_train + n_eval
    total = n_bins + n_fwd
    dmfc = card.behavior_metric == "tp corr"  # DMFC_RSG's per-trial behaviour (ts, tp)
    # No repeated conditions (MC_RTT's continuous reaching): no PSTHs, ragged trial ends.
    conditions = "psth R2" in card.metrics

    if dmfc:
        # Conditions (is_eye, theta, is_short, ts); the neural speed scales with 1 / tp.
        is_eye = rng.integers(0, 2, n_trials)
        theta = rng.choice([0.0, 180.0], n_trials)
        is_short = rng.integers(0, 2, n_trials)
        ts = np.where(
            is_short == 1,
            rng.choice([0.48, 0.56, 0.64], n_trials),
            rng.choice([0.8, 0.9, 1.0], n_trials),
        )
        tp = ts * rng.normal(1.0, 0.1, n_trials)
        cond_keys = np.stack([is_eye, theta, is_short, ts], axis=1)
        _, cond = np.unique(cond_keys, axis=0, return_inverse=True)
        cond = cond.ravel()
        n_cond = int(cond.max()) + 1
        t = np.linspace(0, 1, total)
        speed = 1.0 / tp
        z = np.stack(
            [
                np.sin(2 * np.pi * speed[:, None] * t + is_eye[:, None]),
                np.cos(2 * np.pi * speed[:, None] * t + theta[:, None] / 90),
                t[None].repeat(n_trials, 0) * is_short[:, None],
            ],
            axis=2,
        )
    else:
        n_cond = 6
        cond = rng.integers(0, n_cond, n_trials)
        z = _latents(rng, n_cond, total)[cond] + 0.1 * rng.normal(size=(n_trials, total, 3))
    weights = rng.normal(0, 0.6, size=(z.shape[2], n_neurons)).astype(np.float32)
    base = np.log(rng.uniform(0.05, 0.3, n_neurons) * bin_ms / 5).astype(np.float32)
    z = z.astype(np.float32)
    rates = np.exp(z @ weights + base)  # (trial, time+fwd, neuron), float32 to fit full sizes
    spikes = rng.poisson(rates).astype(np.float32)
    velocity = z[..., :2] @ rng.normal(size=(2, 2)) + 0.3 * rng.normal(size=(n_trials, total, 2))

    tr, ev = np.arange(n_train), np.arange(n_train, n_trials)
    target: dict[str, np.ndarray] = {
        "eval_spikes_heldout": spikes[ev, :n_bins, n_in:].astype(np.float64),
        "eval_spikes_heldin_forward": spikes[ev, n_bins:, :n_in].astype(np.float64),
        "eval_spikes_heldout_forward": spikes[ev, n_bins:, n_in:].astype(np.float64),
    }
    if dmfc:
        # Set-go window at the end of the trial, front-padded with NaN.
        lengths = rng.integers(n_bins // 3, n_bins + 1, size=n_eval)
        for i, n_valid in enumerate(lengths):
            target["eval_spikes_heldout"][i, : n_bins - n_valid] = np.nan
        behavior = np.stack([is_eye, theta, is_short, ts, tp], axis=1).astype(np.float64)
        outlier = rng.random(n_trials) < 0.06
        behavior[outlier] = np.nan
        target["train_behavior"] = behavior[tr]
        target["eval_behavior"] = behavior[ev]
    else:
        target["train_behavior"] = velocity[tr, :n_bins].copy()
        target["eval_behavior"] = velocity[ev, :n_bins].copy()
        if not conditions:  # jagged trial ends: NaN behaviour at some trial ends
            for arr in (target["train_behavior"], target["eval_behavior"]):
                for i in rng.choice(len(arr), size=max(1, len(arr) // 5), replace=False):
                    arr[i, n_bins - rng.integers(1, n_bins // 4 + 1) :] = np.nan
    if card.decode_masks == 2:  # Area2_Bump: active and passive (bumped) trials
        bump = rng.random(n_trials) < 0.4
        target["train_decode_mask"] = np.stack([~bump[tr], bump[tr]], axis=1)
        target["eval_decode_mask"] = np.stack([~bump[ev], bump[ev]], axis=1)
    if conditions:
        eval_cond = cond[ev]
        train_cond = cond[tr]
        psth = np.stack(
            [
                rates[cond == c, :n_bins].mean(axis=0)
                if np.any(cond == c)
                else rates[:, :n_bins].mean(axis=0)
                for c in range(n_cond)
            ]
        )
        jitter = np.zeros(n_eval, dtype=np.int64)
        if dmfc:
            # PSTH window: the last valid_c bins of each condition (front NaN padding).
            valid = rng.integers(n_bins // 2, n_bins + 1, size=n_cond)
            for c in range(n_cond):
                psth[c, : n_bins - valid[c]] = np.nan
            if phase == "val":
                jitter = rng.integers(0, n_bins - valid[eval_cond] + 1)
        else:
            psth[0, n_bins - 3 :] = np.nan  # a shorter condition, padded at the back
        eval_idx = [np.flatnonzero(eval_cond == c).astype(np.int32) for c in range(n_cond)]
        eval_idx[-1] = eval_idx[-1][:0]  # a condition without eval trials
        target["psth"] = psth
        target["eval_cond_idx"] = _object_array(eval_idx)
        target["train_cond_idx"] = _object_array(
            [np.flatnonzero(train_cond == c).astype(np.int32) for c in range(n_cond)]
        )
        if dmfc:
            target["eval_jitter"] = jitter
            target["train_jitter"] = np.zeros(n_train, dtype=np.int64)

    if kind == "random":
        pred = rng.gamma(2.0, rates.mean() / 2.0, size=rates.shape).astype(np.float32)
    else:
        pred = rates * rng.lognormal(0.0, 0.3, size=rates.shape).astype(np.float32)
        if kind == "zeros":
            pred[rng.random(pred.shape) < 0.05] = 0.0
    submission = {
        "eval_rates_heldin": pred[ev, :n_bins, :n_in],
        "eval_rates_heldout": pred[ev, :n_bins, n_in:],
        "eval_rates_heldin_forward": pred[ev, n_bins:, :n_in],
        "eval_rates_heldout_forward": pred[ev, n_bins:, n_in:],
    }
    if not dmfc:
        submission["train_rates_heldin"] = pred[tr, :n_bins, :n_in]
        submission["train_rates_heldout"] = pred[tr, :n_bins, n_in:]
    return target, {k: np.ascontiguousarray(v) for k, v in submission.items()}
