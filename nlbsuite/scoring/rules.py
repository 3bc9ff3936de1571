"""Submission rules: the one rule set that scoring enforces and ``nlbsuite validate`` lists.

A :class:`Problem` is an error (scoring refuses it) or a warning; the per-group rules live in
:meth:`nlbsuite.scoring.evaluator.Evaluator.problems`, the file-level ones here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from nlbsuite.catalog import SUBMISSION_KEYS, DatasetKey
from nlbsuite.errors import UserError
from nlbsuite.h5read import read_dataset

DESCRIBE = {
    "train_rates_heldin": "train trials, bins, held-in neurons",
    "train_rates_heldout": "train trials, bins, held-out neurons",
    "eval_rates_heldin": "eval trials, bins, held-in neurons",
    "eval_rates_heldout": "eval trials, bins, held-out neurons",
    "eval_rates_heldin_forward": "eval trials, forward bins, held-in neurons",
    "eval_rates_heldout_forward": "eval trials, forward bins, held-out neurons",
}
FORWARD_KEYS = ("eval_rates_heldin_forward", "eval_rates_heldout_forward")
_GROUPS_EXPECTED = "expected groups named by dataset key, e.g. 'mc_maze' or 'mc_maze_20'"


@dataclass(frozen=True)
class Problem:
    """One finding of the submission rules: ``severity`` is "error" (scoring refuses it;
    EvalAI would fail or score it wrongly) or "warning" (scored, but probably not meant).
    ``where``: ``key/array``, a dataset key, or "" for the whole file."""

    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


def first_error(problems: list[Problem], source: str) -> None:
    """Raise the first error of ``problems`` as one line that starts with ``source`` (e.g.
    ``submission path/to/file.h5``); warnings pass."""
    for p in problems:
        if p.severity == "error":
            raise UserError(
                f"{source}: {p.where}: {p.message}" if p.where else f"{source}: {p.message}"
            )


def fmt_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"


def rate_problems(arr: np.ndarray, where: str) -> list[Problem]:
    """Errors in the values of one numeric rate array: NaN, infinite, negative or all-zero
    rates, with their counts. One min and one max pass when there is none."""
    if arr.size == 0:
        return []
    low, high = arr.min(), arr.max()  # NaN if any value is NaN
    if low >= 0 and 0 < high < np.inf:
        return []
    out = []
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        out.append(Problem("error", where, f"{n_nan} NaN values (rates must be finite)"))
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        out.append(Problem("error", where, f"{n_inf} infinite values (rates must be finite)"))
    finite = arr[np.isfinite(arr)]
    if finite.size and finite.min() < 0:
        out.append(
            Problem(
                "error",
                where,
                f"{int((finite < 0).sum())} negative rates (min {finite.min():.4g}); "
                "rates must be >= 0",
            )
        )
    if not np.any(arr):
        out.append(Problem("error", where, "all rates are zero"))
    return out


def silent_neurons(arr: np.ndarray, where: str) -> list[Problem]:
    """A warning for neurons whose rates are zero everywhere. ``arr``: (trial, time, neuron)."""
    if not arr.size or not np.any(arr):
        return []
    silent = int((~np.any(arr.reshape(-1, arr.shape[2]), axis=0)).sum())
    if not silent:
        return []
    return [
        Problem(
            "warning", where, f"{silent} neuron(s) with all-zero rates (scored as 1e-9 per bin)"
        )
    ]


def consistency_problems(key: str, shapes: dict[str, tuple[int, ...]]) -> list[Problem]:
    """Trials, bins and neuron counts must agree between the arrays of one group."""
    pairs = [
        ("train_rates_heldin", "train_rates_heldout", (0, 1), "trials and bins"),
        ("eval_rates_heldin", "eval_rates_heldout", (0, 1), "trials and bins"),
        ("eval_rates_heldin_forward", "eval_rates_heldout_forward", (0, 1), "trials and bins"),
        ("eval_rates_heldin", "eval_rates_heldin_forward", (0, 2), "trials and neurons"),
        ("eval_rates_heldout", "eval_rates_heldout_forward", (0, 2), "trials and neurons"),
        ("train_rates_heldin", "eval_rates_heldin", (1, 2), "bins and neurons"),
        ("train_rates_heldout", "eval_rates_heldout", (1, 2), "bins and neurons"),
    ]
    out = []
    for a, b, axes, what in pairs:
        if (
            a in shapes
            and b in shapes
            and [shapes[a][i] for i in axes] != [shapes[b][i] for i in axes]
        ):
            out.append(
                Problem(
                    "error",
                    f"{key}/{b}",
                    f"shape {shapes[b]} does not match {a} {shapes[a]} in {what}",
                )
            )
    return out


H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError)  # h5py's, on damaged content


def damaged(source: Any, where: str, exc: Exception) -> Problem:
    """A damaged-file error for h5py ``source``; re-raises ``exc`` for in-memory input."""
    if not isinstance(source, h5py.Group):  # h5py.File is a Group
        raise exc
    return Problem("error", where, f"damaged HDF5 content ({exc})")


def tree_problems(tree: Any, target_tree: Any | None = None) -> tuple[list[str], list[Problem]]:
    """The dataset keys of a submission file (or dict) whose groups can be checked, and the
    problems of its layout: no groups, a top-level item that is not a group, an unknown
    dataset key, damaged file content (errors); a key the target file lacks (warning)."""
    try:
        return _tree_problems(tree, target_tree)
    except H5_ERRORS as exc:
        return [], [damaged(tree, "", exc)]


def _tree_problems(tree: Any, target_tree: Any | None) -> tuple[list[str], list[Problem]]:
    keys, problems = [], []
    names = list(tree)
    if not names:
        problems.append(Problem("error", "", f"no dataset groups ({_GROUPS_EXPECTED})"))
    for key in names:
        if not isinstance(tree[key], (h5py.Group, Mapping)):
            problems.append(
                Problem("error", key, f"top-level item is not a group ({_GROUPS_EXPECTED})")
            )
            continue
        try:
            DatasetKey.parse(key)
        except UserError as exc:
            problems.append(Problem("error", key, str(exc)))
            continue
        if target_tree is not None and key not in target_tree:
            problems.append(
                Problem("warning", key, "not in the target file; it will not be scored")
            )
        keys.append(key)
    return keys, problems


TRAIN_KEYS = ("train_rates_heldin", "train_rates_heldout")


def group_problems(
    key: str,
    submission: Any,
    shapes: Mapping[str, tuple[int | None, ...]],
    required: Iterable[str],
    *,
    ignored: tuple[str, tuple[str, ...]] | tuple[()] = (),
    warnings: bool = True,
) -> tuple[dict[str, np.ndarray], list[Problem]]:
    """The prediction rules for one dataset key's rate arrays: the one validator behind
    scoring, ``validate``, ``submit`` and the runner's check of a model's :class:`Rates`.

    ``submission``: array name -> array (dict or h5py group); ``shapes``: the expected shape per
    array (None: any size on that axis; arrays without an entry: any shape); ``required``:
    arrays that must be present; ``ignored``: (why, names) of arrays that are not scored.
    Returns the arrays that passed (float; integers as float64) and every problem: errors for
    a missing required array, one forward array without the other, an item that is no
    numeric (trial, time, neuron) array, a shape other than expected, NaN / infinite /
    negative / all-zero rates, arrays that disagree in trials, bins or neurons; warnings
    (only with ``warnings``): dtype not float32, no forward arrays, silent neurons, unknown
    or ignored arrays.
    """
    required = set(required)
    problems: list[Problem] = []
    arrays: dict[str, np.ndarray] = {}
    seen: dict[str, tuple[int, ...]] = {}
    for name in SUBMISSION_KEYS:
        where = f"{key}/{name}"
        exp = shapes.get(name)
        exp_txt = f"{fmt_shape(exp)} ({DESCRIBE[name]})" if exp else f"({DESCRIBE[name]})"
        if ignored and name in ignored[1]:
            if warnings and name in submission:
                problems.append(Problem("warning", where, f"{ignored[0]}; this array is ignored"))
            continue
        if name not in submission:
            other = FORWARD_KEYS[1 - FORWARD_KEYS.index(name)] if name in FORWARD_KEYS else None
            if name in required:
                problems.append(
                    Problem("error", where, f"missing key; expected shape {exp_txt}")
                )
            elif other is not None and other in submission:
                problems.append(
                    Problem(
                        "error", where, f"missing key; {other} is given (give both or neither)"
                    )
                )
            elif warnings and other is not None:
                problems.append(Problem("warning", where, "missing key; no fp-bps without it"))
            continue
        item = submission[name]
        if isinstance(item, (h5py.Group, Mapping)):
            problems.append(Problem("error", where, f"is a group; expected an array {exp_txt}"))
            continue
        arr = np.asarray(read_dataset(item) if isinstance(item, h5py.Dataset) else item)
        if arr.dtype.kind not in "fiu":
            problems.append(Problem("error", where, f"dtype {arr.dtype}; expected float32"))
            continue
        if warnings and arr.dtype != np.float32:
            problems.append(
                Problem(
                    "warning",
                    where,
                    f"dtype {arr.dtype}; EvalAI submissions are float32 (nlb_tools reads "
                    "any number as float64)",
                )
            )
        if arr.ndim != 3:
            problems.append(Problem("error", where, f"shape {arr.shape}; expected {exp_txt}"))
            continue
        if exp and any(e is not None and e != a for e, a in zip(exp, arr.shape, strict=True)):
            problems.append(Problem("error", where, f"shape {arr.shape}; expected {exp_txt}"))
        seen[name] = arr.shape
        problems += rate_problems(arr, where)
        if warnings:
            problems += silent_neurons(arr, where)
        arrays[name] = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
    if warnings:
        for name in submission:
            if name not in SUBMISSION_KEYS:
                problems.append(
                    Problem(
                        "warning",
                        f"{key}/{name}",
                        f"unexpected key; the evaluator reads only {', '.join(SUBMISSION_KEYS)}",
                    )
                )
    problems += consistency_problems(key, seen)
    return arrays, problems


def check_prediction(
    key: str, arrays: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]], source: str
) -> None:
    """Raise the first error of :func:`group_problems` for a model's prediction ``arrays``,
    every array of ``shapes`` required, as one line starting with ``source``."""
    _, problems = group_problems(key, arrays, shapes, list(shapes), warnings=False)
    first_error(problems, source)
