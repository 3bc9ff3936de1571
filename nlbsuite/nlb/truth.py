"""Ground-truth rates for synthetic NLB sessions (files written by :mod:`.synthetic`).

The true expected count of a bin is the sum of its 1 ms rates
``exp(bias + latents @ loading) / 1000``, over exactly the bins of each tensor.
"""

from __future__ import annotations

import numpy as np

from nlbsuite.data import GroundTruth
from nlbsuite.nlb.nwb import Recording, SpikeGroup
from nlbsuite.nlb.specs import DatasetSpec
from nlbsuite.nlb.tensors import bin_recording, fixed_index, input_windows

_CHUNK = 2_000_000  # ms x units per exp() batch


class _Truth:
    """Latents on the joint 1 ms grid and loading/bias by unit id."""

    def __init__(self, rec: Recording):
        from nlbsuite.nlb.nwb import _file_offsets, _read_file
        from nlbsuite.nlb.synthetic import read_truth

        parts = [read_truth(p) for p in rec.paths]
        if any(p is None for p in parts):
            raise LookupError("no ground truth")
        files = [_read_file(p) for p in rec.paths]
        offsets = _file_offsets(files)
        dim = parts[0]["latents"].shape[1]
        self.latents = np.zeros((rec.n_ms, dim), dtype=np.float32)
        self.by_id: dict[int, tuple[np.ndarray, float]] = {}
        for f, off, t in zip(files, offsets, parts, strict=True):
            lat = t["latents"][: f.n_ms]
            self.latents[off : off + len(lat)] = lat
            for col, uid in enumerate(f.unit_ids):
                self.by_id[int(uid)] = (t["loading"][:, col], float(t["bias"][col]))

    def params(self, group: SpikeGroup) -> tuple[np.ndarray, np.ndarray]:
        loading = np.stack([self.by_id[int(u)][0] for u in group.unit_ids], axis=1)
        bias = np.array([self.by_id[int(u)][1] for u in group.unit_ids])
        return loading, bias

    def bin_rates(self, idx: np.ndarray, bin_ms: int, group: SpikeGroup) -> np.ndarray:
        """(trial, time, unit) expected counts of bins ``idx`` (trial, time)."""
        loading, bias = self.params(group)
        flat = idx.reshape(-1)
        out = np.zeros((len(flat), group.n_units))
        step = max(1, _CHUNK // max(group.n_units * bin_ms, 1))
        for a in range(0, len(flat), step):
            ms = flat[a : a + step, None] * bin_ms + np.arange(bin_ms)[None, :]
            ms = np.clip(ms, 0, len(self.latents) - 1)
            rate = np.exp(bias + self.latents[ms] @ loading) / 1000.0  # (b, f, units)
            out[a : a + step] = rate.sum(axis=1)
        return out.reshape(*idx.shape, group.n_units)

    def bin_latents(self, idx: np.ndarray, bin_ms: int) -> np.ndarray:
        ms = idx[..., None] * bin_ms + np.arange(bin_ms)
        return self.latents[np.clip(ms, 0, len(self.latents) - 1)].mean(axis=-2)


def ground_truth(
    rec: Recording, spec: DatasetSpec, bin_ms: int, phase: str, seed: int = 0
) -> GroundTruth | None:
    """True rates for the tensors of :func:`~nlbsuite.nlb.prepare.build_tensors`, or None
    when the files carry no ground truth (real data)."""
    from nlbsuite.nlb.prepare import phase_masks

    try:
        truth = _Truth(rec)
    except LookupError:
        return None
    binned = bin_recording(rec, bin_ms, None)
    train_mask, eval_mask = phase_masks(rec, phase)
    _, _, win, _ = input_windows(rec, binned, spec, train_mask, seed)
    train_idx = fixed_index(win, binned.any_nan, "train truth")
    # the target's forward window equals the input window's forward window for every spec
    _, _, ewin, fwd = input_windows(rec, binned, spec, eval_mask, seed)
    eval_idx = fixed_index(ewin, None, "eval truth")
    # test trials live in the test file, which holds no data after them: no forward truth
    fwd_idx = fixed_index(fwd, None, "forward truth") if phase == "val" else None
    groups = [rec.heldin, rec.heldout]

    def rates(idx: np.ndarray, g: SpikeGroup | None) -> np.ndarray:
        if g is None:
            return np.zeros((*idx.shape, 0))
        if idx.size == 0:
            return np.zeros((*idx.shape, g.n_units))
        return truth.bin_rates(idx, bin_ms, g)

    return GroundTruth(
        train_rates_heldin=rates(train_idx, groups[0]),
        train_rates_heldout=rates(train_idx, groups[1]),
        eval_rates_heldin=rates(eval_idx, groups[0]),
        eval_rates_heldout=rates(eval_idx, groups[1]),
        eval_rates_heldin_forward=None if fwd_idx is None else rates(fwd_idx, groups[0]),
        eval_rates_heldout_forward=None if fwd_idx is None else rates(fwd_idx, groups[1]),
        train_latents=truth.bin_latents(train_idx, bin_ms) if train_idx.size else None,
        eval_latents=truth.bin_latents(eval_idx, bin_ms) if eval_idx.size else None,
    )


__all__ = ["ground_truth"]
