"""The genuine DANDI 000140 test NWB (MC_Maze_Small) loads into the test-phase eval input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlbsuite.nlb import load_nlb


def test_real_test_nwb_gives_eval_input(mc_maze_small_test_nwb: Path) -> None:
    data = load_nlb("mc_maze_small", "test", 5, nwb_paths=[mc_maze_small_test_nwb], use_cache=False)
    assert data.eval_spikes_heldin.shape == (100, 140, 107)
    assert data.train_spikes_heldin.shape == (0, 140, 107)  # the test file has no train trials
    assert data.target is None and data.truth is None
    spikes = data.eval_spikes_heldin
    assert not np.isnan(spikes).any() and np.all(spikes == np.round(spikes))
    # every spike of the file falls in one of the 100 aligned 700 ms windows
    assert spikes.sum() == 32897
    data20 = load_nlb(
        "mc_maze_small", "test", 20, nwb_paths=[mc_maze_small_test_nwb], use_cache=False
    )
    assert data20.eval_spikes_heldin.shape == (100, 35, 107)
    np.testing.assert_array_equal(
        data20.eval_spikes_heldin, spikes.reshape(100, 35, 4, 107).sum(axis=2)
    )
