"""Reading nlb_tools' h5 layouts: submission and target files (or in-memory dicts of the same
shape), opened with one-line errors for missing, empty or damaged files."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nlbsuite.errors import UserError, require
from nlbsuite.h5read import read_dataset


def read_item(group: Any, key: str) -> Any:
    """``group[key]`` as an array (h5py datasets read fully, by :func:`read_dataset`: possibly
    a read-only view of the file), or None if absent."""
    if key not in group:
        return None
    item = group[key]
    if isinstance(item, h5py.Dataset):
        return read_dataset(item)
    return item


def item_shape(group: Any, key: str) -> tuple[int, ...] | None:
    """Shape of ``group[key]`` without reading it (None if absent)."""
    if key not in group:
        return None
    item = group[key]
    return tuple(item.shape) if hasattr(item, "shape") else np.shape(item)


def float_array(value: Any, where: str, expected: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise UserError(f"{where}: expected a float array {expected}, got dtype {arr.dtype}")
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        raise UserError(f"{where}: expected shape {expected}, got shape {arr.shape}")
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)



@contextmanager
def open_h5_tree(source: str | Path | Mapping[str, Any], role: str) -> Iterator[Any]:
    """Yield a mapping of dataset key -> group for a file path or an in-memory dict; h5py's
    errors while it is read (damaged or truncated content) become one :class:`UserError`."""
    if isinstance(source, Mapping):
        yield source
        return
    path = Path(source)
    require(path.exists(), f"{role} {path}: file not found")
    require(
        path.is_file() and path.stat().st_size > 0,
        f"{role} {path}: file is empty (expected an HDF5 file)",
    )
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise UserError(f"{role} {path}: not an HDF5 file") from None
    try:
        with f:
            yield f
    except (OSError, KeyError, RuntimeError) as exc:  # h5py's errors for damaged content
        raise UserError(f"{role} {path}: damaged HDF5 file ({exc})") from None


def dataset_keys(tree: Any, role: str) -> list[str]:
    keys = list(tree)
    for k in keys:
        item = tree[k]
        require(
            isinstance(item, (h5py.Group, Mapping)),
            f"{role}: top-level item '{k}' is not a group (expected groups named by "
            "dataset key, e.g. 'mc_maze' or 'mc_maze_20')",
        )
    return keys

