"""Shared test fixtures: tiny Lorenz data and the real MC_Maze_Small files (skipped if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nlbsuite.data import PhaseData
from nlbsuite.lorenz import make_lorenz

SHARED = Path(os.environ.get("NLBSUITE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MC_MAZE_SMALL_DIR = SHARED / "data" / "mc_maze_small"
MC_MAZE_SMALL_VAL = MC_MAZE_SMALL_DIR / "mc_maze_small_val_tensors.h5"
MC_MAZE_SMALL_TEST_NWB = MC_MAZE_SMALL_DIR / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"


@pytest.fixture(scope="session")
def tiny_lorenz() -> PhaseData:
    """Tiny Lorenz val phase: 32 train / 8 eval trials x 20 bins (+5 forward) x 22+8 neurons."""
    return make_lorenz(phase="val", seed=0, size="tiny")


@pytest.fixture(scope="session")
def mc_maze_small_val() -> Path:
    """Path of the real MC_Maze_Small val tensors; skips when ../shared is absent."""
    if not MC_MAZE_SMALL_VAL.exists():
        pytest.skip(f"real data not found at {MC_MAZE_SMALL_VAL}")
    return MC_MAZE_SMALL_VAL


@pytest.fixture(scope="session")
def mc_maze_small_test_nwb() -> Path:
    """Path of the real MC_Maze_Small test NWB; skips when ../shared is absent."""
    if not MC_MAZE_SMALL_TEST_NWB.exists():
        pytest.skip(f"real data not found at {MC_MAZE_SMALL_TEST_NWB}")
    return MC_MAZE_SMALL_TEST_NWB


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a test module (``pytestmark = usefixtures(...)``): tiny models
    gain nothing from threads, and oversubscribed shared CPUs lose a lot."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
