"""EvalAI submission files: write, read and validate nlb_tools' submission h5 layout.

A submission holds one group per dataset key (``mc_maze``, ``mc_maze_20``, ``area2_bump``,
...) with float32 arrays ``train_rates_heldin``, ``train_rates_heldout``,
``eval_rates_heldin``, ``eval_rates_heldout``, ``eval_rates_heldin_forward`` and
``eval_rates_heldout_forward``, all (trial, time, neuron) expected counts per bin; DMFC_RSG
has no train rates. Several datasets may share one file; nlb_tools' ``evaluate`` (and
EvalAI) read it unchanged. Writes are atomic (:mod:`nlbsuite.fileio`): a failed write never
leaves a half-written file.

:func:`write_target` writes evaluation targets in nlb_tools' ``eval_target.h5`` layout (for
local scoring of val-phase or synthetic data with ``nlbsuite score``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError
from nlbsuite.evaluation import (
    NLB_SHAPES,
    SUBMISSION_KEYS,
    Evaluator,
    open_h5_tree,
    parse_dataset_key,
)
from nlbsuite.fileio import atomic_path

_DESCRIBE = {
    "train_rates_heldin": "train trials, bins, held-in neurons",
    "train_rates_heldout": "train trials, bins, held-out neurons",
    "eval_rates_heldin": "eval trials, bins, held-in neurons",
    "eval_rates_heldout": "eval trials, bins, held-out neurons",
    "eval_rates_heldin_forward": "eval trials, forward bins, held-in neurons",
    "eval_rates_heldout_forward": "eval trials, forward bins, held-out neurons",
}


def submission_arrays(
    rates: Rates | Mapping[str, np.ndarray], dataset_key: str
) -> dict[str, np.ndarray]:
    """The arrays of one submission group: float32 copies (the input is not changed), the
    forward windows when present, and no train rates for DMFC_RSG."""
    dataset, _ = parse_dataset_key(dataset_key)
    arrays = rates.arrays() if isinstance(rates, Rates) else dict(rates)
    out = {}
    for name in SUBMISSION_KEYS:
        value = arrays.get(name)
        if value is None or (dataset == "dmfc_rsg" and name.startswith("train_")):
            continue
        out[name] = np.asarray(value, dtype=np.float32)
    return out


def _atomic_h5(path: Path, fill: Any, merge: bool, replaced: set[str]) -> Path:
    """Write an h5 file atomically: ``fill(h5py.File)`` writes into a temp file next to
    ``path``, which then replaces ``path``. With ``merge``, the groups of an existing
    ``path`` other than ``replaced`` are copied into the new file first."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as dst:
        if merge and path.exists():
            with open_h5_tree(path, "existing file") as src:
                for key in src:
                    if key not in replaced:
                        src.copy(src[key], dst, name=key)
        fill(dst)
    return path


def write_submission(
    path: str | Path,
    groups: Mapping[str, Rates | Mapping[str, np.ndarray]],
    *,
    merge: bool = False,
    compression: str | None = "gzip",
) -> Path:
    """Write ``{dataset_key: rates}`` as an EvalAI submission file; returns the path.

    ``merge``: keep the other dataset groups of an existing file (several datasets in one
    file); otherwise the file is replaced. ``compression``: h5py filter (nlb_tools uses gzip).
    """
    for key in groups:
        parse_dataset_key(key)
    arrays = {key: submission_arrays(rates, key) for key, rates in groups.items()}

    def fill(f: h5py.File) -> None:
        for key, group in arrays.items():
            g = f.create_group(key)
            for name, value in group.items():
                g.create_dataset(name, data=value, compression=compression)

    return _atomic_h5(Path(path), fill, merge, set(arrays))


def read_submission(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """``{dataset_key: {array name: array}}`` of a submission file."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with open_h5_tree(path, "submission") as f:
        for key in f:
            group = f[key]
            if not isinstance(group, h5py.Group):
                raise UserError(f"submission {path}: top-level item '{key}' is not a group")
            out[key] = {
                name: group[name][()] for name in group if isinstance(group[name], h5py.Dataset)
            }
    return out


def target_group(data: PhaseData) -> dict[str, Any]:
    """nlb_tools' eval-target group of ``data`` (its :class:`EvalTarget`, plus the train
    behaviour when the target has eval behaviour but no train behaviour)."""
    if data.target is None:
        raise UserError(f"{data.key} ({data.phase}): no evaluation target to write")
    group = data.target.arrays()
    if (
        "eval_behavior" in group
        and "train_behavior" not in group
        and data.train_behavior is not None
    ):
        group["train_behavior"] = data.train_behavior
    return group


def write_target(
    path: str | Path, groups: Mapping[str, Mapping[str, Any]], *, merge: bool = False
) -> Path:
    """Write ``{dataset_key: target group}`` in nlb_tools' ``eval_target.h5`` layout.

    Condition index lists (``eval_cond_idx``, ``train_cond_idx``) become variable-length
    int32 datasets, as nlb_tools writes them; other arrays keep their dtype.
    """
    for key in groups:
        parse_dataset_key(key)

    def fill(f: h5py.File) -> None:
        for key, group in groups.items():
            g = f.create_group(key)
            for name, value in group.items():
                if name.endswith("_cond_idx"):
                    items = [np.asarray(ix, dtype=np.int32).ravel() for ix in value]
                    ds = g.create_dataset(name, (len(items),), dtype=h5py.vlen_dtype(np.int32))
                    for i, ix in enumerate(items):
                        ds[i] = ix
                else:
                    g.create_dataset(name, data=np.asarray(value))

    return _atomic_h5(Path(path), fill, merge, set(groups))


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`validate_submission`: ``severity`` is "error" (EvalAI would
    fail or score it wrongly) or "warning" (accepted, but probably not meant)."""

    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"


def _expected_shapes(key: str, target_group: Any | None) -> dict[str, tuple[int | None, ...]]:
    """Expected shapes per array (None: any size), from the target if given, else from the
    NLB sizes (trial counts free)."""
    dataset, bin_ms = parse_dataset_key(key)
    shapes: dict[str, tuple[int | None, ...]] = {}
    if dataset in NLB_SHAPES:
        s = NLB_SHAPES[dataset]
        bins, fwd = s.bins(bin_ms)
        for name in SUBMISSION_KEYS:
            n = s.n_heldin if name.endswith(("heldin", "heldin_forward")) else s.n_heldout
            shapes[name] = (None, fwd if name.endswith("forward") else bins, n)
    if target_group is not None:
        shapes.update(Evaluator(key).expected_shapes(target_group))
    return shapes


def _check_values(arr: np.ndarray, where: str, problems: list[Problem]) -> None:
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        problems.append(Problem("error", where, f"{n_nan} NaN values (rates must be finite)"))
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        problems.append(Problem("error", where, f"{n_inf} infinite values"))
    finite = arr[np.isfinite(arr)]
    if finite.size and finite.min() < 0:
        problems.append(
            Problem(
                "error",
                where,
                f"{int((finite < 0).sum())} negative rates "
                f"(min {finite.min():.4g}); rates must be >= 0",
            )
        )
    if arr.size and not np.any(arr):
        problems.append(Problem("error", where, "all rates are zero"))
    elif arr.ndim == 3 and arr.size:
        silent = int((~np.any(arr.reshape(-1, arr.shape[2]), axis=0)).sum())
        if silent:
            problems.append(
                Problem(
                    "warning",
                    where,
                    f"{silent} neuron(s) with all-zero rates (scored as 1e-9 per bin)",
                )
            )


def _validate_group(
    key: str, group: Any, target_group: Any | None, problems: list[Problem]
) -> None:
    dataset, _ = parse_dataset_key(key)
    dmfc = dataset == "dmfc_rsg"
    try:
        expected = _expected_shapes(key, target_group)
    except UserError as exc:
        problems.append(Problem("error", f"target '{key}'", str(exc)))
        expected = _expected_shapes(key, None)
    required = ["eval_rates_heldin", "eval_rates_heldout"]
    if not dmfc:
        required = ["train_rates_heldin", "train_rates_heldout", *required]
    shapes: dict[str, tuple[int, ...]] = {}
    for name in SUBMISSION_KEYS:
        where = f"{key}/{name}"
        exp = expected.get(name)
        exp_txt = f"{_fmt(exp)} ({_DESCRIBE[name]})" if exp else f"({_DESCRIBE[name]})"
        if name not in group:
            if name in required:
                problems.append(Problem("error", where, f"missing key; expected shape {exp_txt}"))
            elif not (dmfc and name.startswith("train_")):
                problems.append(Problem("warning", where, "missing key; no fp-bps without it"))
            continue
        if dmfc and name.startswith("train_"):
            problems.append(
                Problem(
                    "warning",
                    where,
                    "DMFC_RSG is scored without train rates; this array is ignored",
                )
            )
            continue
        item = group[name]
        if isinstance(item, (h5py.Group, Mapping)):
            problems.append(Problem("error", where, f"is a group; expected an array {exp_txt}"))
            continue
        arr = np.asarray(item[()] if isinstance(item, h5py.Dataset) else item)
        if arr.dtype.kind not in "fiu":
            problems.append(Problem("error", where, f"dtype {arr.dtype}; expected float32"))
            continue
        if arr.dtype != np.float32:
            problems.append(
                Problem(
                    "warning",
                    where,
                    f"dtype {arr.dtype}; EvalAI submissions "
                    "are float32 (nlb_tools reads any number as float64)",
                )
            )
        if arr.ndim != 3:
            problems.append(Problem("error", where, f"shape {arr.shape}; expected {exp_txt}"))
            continue
        if exp and any(e is not None and e != a for e, a in zip(exp, arr.shape, strict=True)):
            problems.append(Problem("error", where, f"shape {arr.shape}; expected {exp_txt}"))
        shapes[name] = arr.shape
        _check_values(arr, where, problems)
    for name in group:
        if name not in SUBMISSION_KEYS:
            problems.append(
                Problem(
                    "warning",
                    f"{key}/{name}",
                    f"unexpected key; the evaluator reads only {', '.join(SUBMISSION_KEYS)}",
                )
            )
    _check_consistency(key, shapes, problems)


def _check_consistency(
    key: str, shapes: dict[str, tuple[int, ...]], problems: list[Problem]
) -> None:
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
    for a, b, axes, what in pairs:
        if a not in shapes or b not in shapes:
            continue
        if [shapes[a][i] for i in axes] != [shapes[b][i] for i in axes]:
            problems.append(
                Problem(
                    "error",
                    f"{key}/{b}",
                    f"shape {shapes[b]} does not match {a} {shapes[a]} in {what}",
                )
            )


def validate_submission(
    source: str | Path | Mapping[str, Any], target: str | Path | Mapping[str, Any] | None = None
) -> list[Problem]:
    """Every problem of a submission file (or dict): keys, shapes (against the NLB sizes and,
    with ``target``, against the eval target's trial counts), dtype, NaN / inf, negative and
    all-zero rates. An empty list means EvalAI will accept and score it."""
    problems: list[Problem] = []
    where = str(source) if not isinstance(source, Mapping) else "submission"
    try:
        with ExitStack() as stack:
            tree = stack.enter_context(open_h5_tree(source, "submission"))
            tgt = None if target is None else stack.enter_context(open_h5_tree(target, "target"))
            if not list(tree):
                return [
                    Problem(
                        "error",
                        where,
                        "no dataset groups (expected groups named by "
                        "dataset key, e.g. 'mc_maze' or 'mc_maze_20')",
                    )
                ]
            for key in tree:
                group = tree[key]
                if not isinstance(group, (h5py.Group, Mapping)):
                    problems.append(Problem("error", key, "top-level item is not a group"))
                    continue
                try:
                    parse_dataset_key(key)
                except UserError as exc:
                    problems.append(Problem("error", key, str(exc)))
                    continue
                tgt_group = None
                if tgt is not None and key in tgt:
                    tgt_group = tgt[key]
                elif tgt is not None:
                    problems.append(
                        Problem("warning", key, "not in the target file; it will not be scored")
                    )
                _validate_group(key, group, tgt_group, problems)
    except UserError as exc:
        message = str(exc).removeprefix(f"submission {where}: ").removeprefix("target ")
        return [*problems, Problem("error", where, message)]
    return problems
