"""The genuine DANDI 000140 test NWB (MC_Maze_Small) loads into the test-phase eval input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nwb_counts import counts_from_nwb, n_spikes

from nlbsuite.nlb import load_nlb


def test_real_test_nwb_gives_eval_input(mc_maze_small_test_nwb: Path) -> None:
    data = load_nlb("mc_maze_small", "test", 5, nwb_paths=[mc_maze_small_test_nwb], use_cache=False)
    assert data.eval_spikes_heldin.shape == (100, 140, 107)  # data README: 100 trials, 107 units
    assert data.train_spikes_heldin.shape == (0, 140, 107)  # the test file has no train trials
    assert data.target is None and data.truth is None
    spikes = data.eval_spikes_heldin
    # each trial's 700 ms around movement onset, binned by brute force from the file
    expected = counts_from_nwb(mc_maze_small_test_nwb, "test", (-250, 450), 5)
    np.testing.assert_array_equal(spikes, expected)
    # the trials' windows tile the recording: every spike of the file is in one of them
    assert spikes.sum() == n_spikes(mc_maze_small_test_nwb)
    data20 = load_nlb(
        "mc_maze_small", "test", 20, nwb_paths=[mc_maze_small_test_nwb], use_cache=False
    )
    assert data20.eval_spikes_heldin.shape == (100, 35, 107)
    np.testing.assert_array_equal(
        data20.eval_spikes_heldin, spikes.reshape(100, 35, 4, 107).sum(axis=2)
    )
