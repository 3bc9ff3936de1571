"""What a run's figures need, saved beside its pickled model so the report never retrains.

``save_predictions`` writes one compressed ``.npz`` (``<run id>.npz`` beside ``<run id>.pkl``)
holding float32 arrays, axis order (trial, time, neuron); only the keys the data supports:

- ``eval_rates``: predicted eval rates, held-in then held-out neurons; ``n_heldin``: ().
- ``eval_spikes``: the eval trials' spikes (held-in + held-out; NaN outside a scored window),
  when the held-out eval spikes are known (val phase): rasters, per-neuron co-bps, paired
  bootstrap deltas.
- ``psth`` (condition, time, neuron), ``cond_trials`` + ``cond_ptr`` (the eval trials of
  condition c are ``cond_trials[cond_ptr[c]:cond_ptr[c + 1]]``), ``eval_jitter`` (trial,):
  the scorer's PSTH inputs.
- ``velocity_true`` / ``velocity_pred`` (eval trial, time, dim): behaviour and its ridge
  decoding from the predicted rates (alpha by the scorer's 5-fold CV over the train trials;
  one decoder for all trials, where the scorer fits one per decode mask).
- ``true_rates`` (trial, time, neuron), ``true_latents`` (trial, time, dim): synthetic data.
- ``latents`` (trial, time, dim): the model's own eval latents, when the adapter has a
  ``latents(heldin)`` method (held-in eval spikes (trial, time, neuron) -> latents).
- ``conditions`` (trial,): each eval trial's condition, where known (-1: none).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError
from nlbsuite.results import write_result_file

SUFFIX = ".npz"


def prediction_arrays(data: PhaseData, rates: Rates, model: Any = None) -> dict[str, np.ndarray]:
    """The arrays :func:`save_predictions` writes (see the module docstring)."""
    f32 = np.float32
    out: dict[str, np.ndarray] = {
        "eval_rates": np.concatenate([rates.eval_rates_heldin, rates.eval_rates_heldout], 2),
        "n_heldin": np.asarray(data.n_heldin),
    }
    tgt = data.target
    if tgt is not None and tgt.eval_spikes_heldout is not None:
        out["eval_spikes"] = np.concatenate([data.eval_spikes_heldin, tgt.eval_spikes_heldout], 2)
    n_eval = len(data.eval_spikes_heldin)
    conditions = np.full(n_eval, -1)
    if tgt is not None and tgt.psth is not None and tgt.eval_cond_idx is not None:
        idx = [np.asarray(c, dtype=np.intp).ravel() for c in tgt.eval_cond_idx]
        out["psth"] = tgt.psth
        out["cond_trials"] = np.concatenate(idx) if idx else np.zeros(0, np.intp)
        out["cond_ptr"] = np.concatenate([[0], np.cumsum([len(c) for c in idx])])
        out["eval_jitter"] = (
            np.zeros(n_eval, np.intp) if tgt.eval_jitter is None else tgt.eval_jitter
        )
        for c, trials in enumerate(idx):
            conditions[trials] = c
    if "eval_conditions" in data.meta:
        conditions = np.asarray(data.meta["eval_conditions"])
    if (conditions >= 0).any():
        out["conditions"] = conditions
    velocity = _decoded_velocity(data, rates)
    if velocity is not None:
        out["velocity_true"], out["velocity_pred"] = velocity
    if data.truth is not None:
        t = data.truth
        out["true_rates"] = np.concatenate([t.eval_rates_heldin, t.eval_rates_heldout], 2)
        if t.eval_latents is not None:
            out["true_latents"] = t.eval_latents
    if callable(getattr(model, "latents", None)):
        out["latents"] = np.asarray(model.latents(data.eval_spikes_heldin))
    return {k: v.astype(f32) if v.dtype.kind == "f" else v for k, v in out.items()}


def _decoded_velocity(data: PhaseData, rates: Rates) -> tuple[np.ndarray, np.ndarray] | None:
    """(true, decoded) eval behaviour (trial, time, dim), or None without time-resolved
    train and eval behaviour and train rates."""
    from nlbsuite.scoring.decoding import ridge_cv

    tgt = data.target
    train_y = None if tgt is None else tgt.train_behavior
    train_y = data.train_behavior if train_y is None else train_y
    eval_y = None if tgt is None else tgt.eval_behavior
    if train_y is None or eval_y is None or rates.train_rates_heldin is None:
        return None
    if eval_y.ndim != 3 or train_y.ndim != 3:  # DMFC_RSG's behaviour is per trial
        return None
    train_x = np.concatenate([rates.train_rates_heldin, rates.train_rates_heldout], 2)
    eval_x = np.concatenate([rates.eval_rates_heldin, rates.eval_rates_heldout], 2)
    fit = ridge_cv(train_x.reshape(-1, train_x.shape[2]), train_y.reshape(-1, train_y.shape[2]))
    pred = fit.predict(eval_x.reshape(-1, eval_x.shape[2])).reshape(*eval_x.shape[:2], -1)
    return eval_y, pred


def save_predictions(path: Path, data: PhaseData, rates: Rates, model: Any = None) -> Path:
    """Write :func:`prediction_arrays` to ``path`` atomically (compressed npz); a full
    disk is a :class:`UserError` naming ``path``."""
    return save_arrays(path, prediction_arrays(data, rates, model))


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` (from :func:`prediction_arrays`) to ``path`` atomically (compressed
    npz); a full disk is a :class:`UserError` naming ``path``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return write_result_file(path, buf.getvalue())


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays saved by :func:`save_predictions`; an unreadable file is a
    :class:`UserError` naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        reason = str(exc).split(". ")[0][:80] or type(exc).__name__
        raise UserError(f"{path}: unreadable saved predictions ({reason})") from None
