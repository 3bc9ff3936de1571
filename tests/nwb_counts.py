"""Spike counts binned by brute force from an NWB file read with h5py: the tests' independent
reference for the tensors nlbsuite builds."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def counts_from_nwb(path: Path, split: str, window_ms: tuple[int, int], bin_ms: int) -> np.ndarray:
    """(trial, time, neuron) counts of the ``split`` trials, held-in units then held-out ones.

    A bin is ``bin_ms`` of the file's clock from a multiple of ``bin_ms``; a trial has the bins
    whose start lies in [move onset + window_ms[0], move onset + window_ms[1]); a spike at t s
    falls in the 1 ms sample floor(t * 1000) (to a micro-millisecond).
    """
    with h5py.File(path, "r") as f:
        trials = f["intervals/trials"]
        chosen = trials["split"][()].astype(str) == split
        onset_us = np.round(trials["move_onset_time"][()][chosen] * 1e6).astype(np.int64)
        spikes = np.split(f["units/spike_times"][()], f["units/spike_times_index"][:-1])
        heldout = f["units/heldout"][()].astype(bool)
    units = [spikes[u] for u in (*np.flatnonzero(~heldout), *np.flatnonzero(heldout))]
    bin_us = bin_ms * 1000
    n_bins = (window_ms[1] - window_ms[0]) // bin_ms
    out = np.zeros((len(onset_us), n_bins, len(units)))
    for i, onset in enumerate(onset_us):
        lo, hi = onset + window_ms[0] * 1000, onset + window_ms[1] * 1000
        starts = np.arange(-(-lo // bin_us) * bin_us, hi, bin_us)[:, None] // 1000  # ms
        assert len(starts) == n_bins
        for j, times in enumerate(units):
            ms = np.floor(np.round(times * 1000, 6))
            out[i, :, j] = ((ms >= starts) & (ms < starts + bin_ms)).sum(axis=1)
    return out


def n_spikes(path: Path) -> int:
    """Every spike of the file's units."""
    with h5py.File(path, "r") as f:
        return int(f["units/spike_times"].shape[0])
