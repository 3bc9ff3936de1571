"""PhaseData.model_input: what a model may see (and nothing else), as read-only views."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from nlbsuite.data import EvalTarget, PhaseData, phase_data_from_h5
from nlbsuite.lorenz import make_lorenz

SEED = 918273  # a generator seed no size, count or flag of the tiny data can equal
INPUT_ARRAYS = (
    "train_spikes_heldin",
    "train_spikes_heldout",
    "eval_spikes_heldin",
    "train_spikes_heldin_forward",
    "train_spikes_heldout_forward",
)


def reachable(obj: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Every object reachable from ``obj`` through dataclass fields, instance attributes,
    dict keys and values, list/tuple items and an array's ``base`` chain."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    children: list[Any] = []
    if isinstance(obj, np.ndarray):
        children = [obj.base] if obj.base is not None else []
    elif isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
    elif isinstance(obj, list | tuple | set):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    for child in children:
        yield from reachable(child, seen)


def hidden_arrays(data: PhaseData) -> list[np.ndarray]:
    """The arrays a model must not see: eval held-out data, targets, truth, condition labels."""
    out = [] if data.eval_spikes_heldout is None else [data.eval_spikes_heldout]
    for part in (data.target, data.truth):
        if part is not None:
            for value in dataclasses.asdict(part).values():
                out += value if isinstance(value, list) else [] if value is None else [value]
    out += [v for v in data.meta.values() if isinstance(v, np.ndarray)]
    return out


def assert_hides(seen: PhaseData, data: PhaseData, secrets: list[str]) -> None:
    """No object reachable from ``seen`` is, shares memory with or equals a hidden array of
    ``data``, or is a number or string that contains one of ``secrets``."""
    hidden = hidden_arrays(data)
    assert hidden, "the test data has nothing to hide"
    for obj in reachable(seen):
        if isinstance(obj, np.ndarray) and obj.size:
            for arr in hidden:
                arr = np.asarray(arr)
                assert not np.shares_memory(obj, arr)
                assert not (obj.shape == arr.shape and np.array_equal(obj, arr))
        elif isinstance(obj, str | int | float) and not isinstance(obj, bool):
            assert not any(s in str(obj) for s in secrets), f"{obj!r} leaks a secret"


def test_lorenz_model_input_hides_eval_data_truth_and_generator_seed() -> None:
    data = make_lorenz(phase="val", seed=SEED, size="tiny")
    assert str(SEED) in data.source and data.meta["seed"] == SEED  # what there is to hide
    seen = data.model_input()
    assert seen.target is None and seen.truth is None and seen.eval_spikes_heldout is None
    assert seen.source == "" and seen.meta == {}
    assert_hides(seen, data, [str(SEED), "lorenz("])
    # What a model needs survives: name, bin width, phase, sizes, every input array.
    assert (seen.dataset, seen.bin_width_ms, seen.phase) == ("lorenz_tiny", 20, "val")
    assert (seen.n_heldin, seen.n_heldout, seen.n_bins, seen.n_forward) == (22, 8, 20, 5)
    assert seen.rate_shapes() == data.rate_shapes()
    for name in INPUT_ARRAYS:
        np.testing.assert_array_equal(getattr(seen, name), getattr(data, name))
    assert data.target is not None and data.truth is not None and data.meta  # original intact


def write_tensors(path: Path, eval_heldout: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["train_spikes_heldin"] = rng.poisson(1.0, (6, 10, 4)).astype(np.float32)
        f["train_spikes_heldout"] = rng.poisson(1.0, (6, 10, 3)).astype(np.float32)
        f["train_spikes_heldin_forward"] = rng.poisson(1.0, (6, 2, 4)).astype(np.float32)
        f["train_spikes_heldout_forward"] = rng.poisson(1.0, (6, 2, 3)).astype(np.float32)
        f["train_behavior"] = rng.normal(size=(6, 10, 2))
        f["eval_spikes_heldin"] = rng.poisson(1.0, (2, 10, 4)).astype(np.float32)
        f["eval_spikes_heldout"] = eval_heldout


def test_tensor_file_model_input_hides_eval_heldout_spikes_and_the_path(tmp_path: Path) -> None:
    path = tmp_path / "mc_maze_small_val_tensors.h5"
    eval_heldout = np.arange(60, dtype=np.float32).reshape(2, 10, 3) % 7
    write_tensors(path, eval_heldout)
    data = phase_data_from_h5(path)
    assert str(tmp_path) in data.source  # the path names the file holding the held-out spikes
    seen = data.model_input()
    assert_hides(seen, data, [str(tmp_path), "tensors"])
    assert seen.train_behavior is not None and seen.n_forward == 2


def test_input_arrays_are_read_only_views_without_copies(tiny_lorenz: PhaseData) -> None:
    seen = tiny_lorenz.model_input()
    for name in INPUT_ARRAYS:
        arr, orig = getattr(seen, name), getattr(tiny_lorenz, name)
        assert np.shares_memory(arr, orig)  # a view, not a copy
        assert not arr.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0, 0] = 1.0
        with pytest.raises(ValueError, match="read-only"):
            arr += 1.0
        assert orig.flags.writeable  # the caller's arrays keep their flags


def test_a_view_into_a_larger_buffer_is_copied_so_its_base_hides_the_rest() -> None:
    # Held-in and held-out eval neurons in one buffer: the held-in view's base holds both.
    rng = np.random.default_rng(1)
    both = rng.poisson(2.0, (3, 8, 7)).astype(float)
    train = rng.poisson(2.0, (5, 8, 7)).astype(float)
    data = PhaseData(
        dataset="x",
        bin_width_ms=5,
        phase="val",
        train_spikes_heldin=train[:, :, :4],
        train_spikes_heldout=train[:, :, 4:],
        eval_spikes_heldin=both[:, :, :4],
        target=EvalTarget(eval_spikes_heldout=both[:, :, 4:]),
    )
    seen = data.model_input()
    assert not np.shares_memory(seen.eval_spikes_heldin, both)
    np.testing.assert_array_equal(seen.eval_spikes_heldin, both[:, :, :4])
    assert_hides(seen, data, [])


def test_forward_window_length_survives_when_only_the_target_shows_it() -> None:
    spikes = np.ones((4, 10, 3))
    data = PhaseData(
        dataset="x",
        bin_width_ms=5,
        phase="val",
        train_spikes_heldin=spikes,
        train_spikes_heldout=spikes[:, :, :2].copy(),
        eval_spikes_heldin=spikes[:2].copy(),
        target=EvalTarget(
            eval_spikes_heldout=np.ones((2, 10, 2)),
            eval_spikes_heldin_forward=np.ones((2, 6, 3)),
            eval_spikes_heldout_forward=np.ones((2, 6, 2)),
        ),
    )
    seen = data.model_input()
    assert seen.target is None and seen.n_forward == data.n_forward == 6
    assert seen.rate_shapes() == data.rate_shapes()
