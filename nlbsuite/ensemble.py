"""Ensembles: the mean of the predicted rates of finished runs, scored and recorded.

``ensemble(runs)`` takes result records (paths or :class:`ResultRecord`) of runs on one
dataset key and phase, re-predicts each member's rates from its saved model on the same
data (the data hash must match every member's record), averages the rates entry by entry
(the six submission arrays), scores the average like any run and writes a record that lists
the members. Members are the runs given, or the ``top`` N of them by a metric of their
val-phase records (:func:`select_top`): never by a test-phase metric. Note that ranking by
val co-bps and then reporting the ensemble's val co-bps reuses the same eval trials, which
flatters the ensemble; rank by the members' own train-split validation (``extras`` keys
such as ``best_valid_nll``) to avoid that.

The record: ``model`` = ``name`` (default "ensemble"), ``preset`` "ensemble", ``config`` =
the member run ids and the averaging rule (so different member sets are different rows),
``seed`` 0, ``fit_seconds`` the members' summed fit time, ``n_parameters`` their sum, and
``extras`` the members' metrics, the best member and whether the ensemble beats it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlbsuite import __version__
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError

PRESET = "ensemble"
RULE = "mean of rates"


def _load(run: str | Path | Any, results_dir: Path) -> tuple[Any, Path]:
    """(record, its folder) for a record, a JSON path or a run id under ``results_dir``."""
    from nlbsuite.results import ResultRecord, load_record

    if isinstance(run, ResultRecord):
        return run, results_dir
    path = Path(run)
    if not path.suffix and not path.exists():
        path = results_dir / f"{run}.json"
    return load_record(path), path.resolve().parent


def _metric_value(record: Any, metric: str) -> float:
    """``metric`` of a record: a scored metric, or an ``extras`` key (lower is better for
    extras, e.g. ``best_valid_nll``)."""
    if metric in record.metrics:
        return float(record.metrics[metric])
    value = record.extras.get(metric)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise UserError(
        f"run {record.run_id} has no metric '{metric}' (metrics: "
        f"{', '.join(sorted(record.metrics)) or 'none'})",
        "metric",
    )


def _higher_is_better(metric: str, record: Any) -> bool:
    from nlbsuite.catalog import METRICS

    if metric not in record.metrics:
        return False  # extras: losses
    info = METRICS.get(metric)
    return True if info is None else info.higher_is_better


def select_top(records: Sequence[Any], n: int, metric: str = "co-bps") -> list[Any]:
    """The ``n`` best of ``records`` by ``metric`` of val-phase runs (ties: by run id).

    A test-phase record is refused: members are never chosen by a test metric."""
    from nlbsuite.selection import forbid_test_selection

    if n < 1:
        raise UserError(f"expected a positive number of members, got {n}", "top")
    for r in records:
        try:
            forbid_test_selection(r.phase, "nlbsuite ensemble --top")
        except UserError as exc:
            raise UserError(f"run {r.run_id} is a {r.phase}-phase run: {exc}", "top") from None
    if n > len(records):
        raise UserError(f"asked for the top {n} of {len(records)} runs", "top")
    higher = _higher_is_better(metric, records[0])
    scored = [(_metric_value(r, metric), r.run_id, r) for r in records]
    if any(math.isnan(s) for s, _, _ in scored):
        bad = next(rid for s, rid, _ in scored if math.isnan(s))
        raise UserError(f"run {bad}: metric '{metric}' is NaN; cannot rank", "metric")
    scored.sort(key=lambda t: (-t[0] if higher else t[0], t[1]))
    return [r for _, _, r in scored[:n]]


def average_rates(members: Sequence[Rates]) -> Rates:
    """Entry-wise mean (float64) of the members' rates; every member must have the same
    arrays with the same shapes."""
    if not members:
        raise UserError("an ensemble needs at least one member", "runs")
    keys = members[0].arrays().keys()
    out: dict[str, np.ndarray | None] = {}
    for key in ("train_rates_heldin", "train_rates_heldout", "eval_rates_heldin",
                "eval_rates_heldout", "eval_rates_heldin_forward", "eval_rates_heldout_forward"):  # fmt: skip
        if key not in keys:
            out[key] = None
            continue
        arrays = [m.arrays().get(key) for m in members]
        if any(a is None or a.shape != arrays[0].shape for a in arrays):
            raise UserError(f"ensemble members disagree on predicted '{key}' (missing or shape)")
        out[key] = np.mean(np.stack([np.asarray(a, dtype=np.float64) for a in arrays]), axis=0)
    return Rates(**out)  # type: ignore[arg-type]


def _config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def ensemble(
    runs: Sequence[str | Path | Any],
    *,
    name: str = "ensemble",
    top: int | None = None,
    metric: str = "co-bps",
    data: PhaseData | str | Path | None = None,
    results_dir: str | Path | None = None,
    save: bool = True,
    log: Callable[[str], None] | None = print,
) -> Any:
    """Average the rates of finished ``runs`` (record paths, run ids or records) into a
    scored :class:`~nlbsuite.results.ResultRecord`; with ``top``, only the best ``top``
    of them by ``metric`` (:func:`select_top`). ``data``: the runs' data when it cannot
    be reloaded by name (runs on a tensor file): the data, or the tensor file, read at the
    members' bin width (a 5 ms file is rebinned for 20 ms runs, as ``run --bin`` does); its
    hash must match the members'."""
    from nlbsuite.datasets import load_dataset
    from nlbsuite.provenance import data_hash, git_commit, now_iso, package_versions
    from nlbsuite.results import ResultRecord, default_results_dir, save_record
    from nlbsuite.runner import load_run_model
    from nlbsuite.scoring import evaluate

    say = log or (lambda _: None)
    results = Path(results_dir) if results_dir is not None else default_results_dir()
    if not runs:
        raise UserError("no runs given: name the result records to ensemble", "runs")
    loaded = [_load(r, results) for r in runs]
    records = [rec for rec, _ in loaded]
    ids = [r.run_id for r in records]
    if len(set(ids)) != len(ids):
        raise UserError("a run is listed twice", "runs")
    first = records[0]
    for rec in records[1:]:
        if (rec.dataset_key, rec.phase, rec.data_hash) != (
            first.dataset_key, first.phase, first.data_hash,
        ):  # fmt: skip
            raise UserError(
                f"run {rec.run_id} is on {rec.dataset_key}/{rec.phase} (data {rec.data_hash}), "
                f"run {first.run_id} on {first.dataset_key}/{first.phase} (data "
                f"{first.data_hash}): ensemble members must share dataset key, phase and data",
                "runs",
            )
    if top is not None:
        chosen = {r.run_id for r in select_top(records, top, metric)}
        loaded = [(rec, folder) for rec, folder in loaded if rec.run_id in chosen]
        say(f"members: top {top} of {len(records)} by val {metric}")
    if isinstance(data, str | Path):
        data = load_dataset(
            None, phase=first.phase, bin_width_ms=first.bin_width_ms, path=data
        )
    if data is None:
        try:
            data = load_dataset(first.dataset, phase=first.phase, bin_width_ms=first.bin_width_ms)
        except UserError as exc:
            raise UserError(
                f"cannot reload the members' data ({exc}); pass it with --data", "data"
            ) from None
    if data_hash(data) != first.data_hash:
        raise UserError(
            f"the data given (hash {data_hash(data)}) is not the members' data "
            f"(hash {first.data_hash})",
            "data",
        )
    start = time.perf_counter()
    member_rates = []
    for rec, folder in loaded:
        rec_path = folder / f"{rec.run_id}.json"
        model = load_run_model(rec_path if rec_path.exists() else rec)
        rates = model.predict(data.model_input())
        rates.check(data)
        member_rates.append(rates)
        say(f"member {rec.run_id}: co-bps {rec.metrics.get('co-bps', math.nan):.4f}")
    mean = average_rates(member_rates)
    predict_seconds = time.perf_counter() - start
    members = [rec for rec, _ in loaded]
    config = {"members": sorted(r.run_id for r in members), "rule": RULE}
    metrics: dict[str, float] = {}
    if data.target is not None or data.phase != "test":  # as the runner: no target, no score
        skip = data.meta.get("not_scored", ())
        metrics = {k: v for k, v in evaluate(data, mean).items() if k not in skip}
    best = max(members, key=lambda r: r.metrics.get(metric, -math.inf))
    extras: dict[str, Any] = {
        "members": {r.run_id: r.metrics for r in members},
        "selection": f"top {top} of {len(records)} by val {metric}" if top else "given",
        "best_member": best.run_id,
    }
    if metric in metrics and metric in best.metrics:
        extras[f"beats_best_member_{metric}"] = bool(metrics[metric] > best.metrics[metric])
    record = ResultRecord(
        model=name,
        preset=PRESET,
        config=config,
        config_hash=_config_hash(config),
        dataset=first.dataset,
        bin_width_ms=first.bin_width_ms,
        phase=first.phase,
        seed=0,
        metrics=metrics,
        fit_seconds=round(sum(r.fit_seconds for r in members), 3),
        predict_seconds=round(predict_seconds, 3),
        n_parameters=sum(r.n_parameters for r in members),
        data_source=first.data_source,
        data_hash=first.data_hash,
        device=first.device,
        nlbsuite_version=__version__,
        code_fingerprint=_config_hash({"members": sorted(r.code_fingerprint for r in members)}),
        git_commit=git_commit(),
        date=now_iso(),
        packages=package_versions(),
        extras=extras,
        target_sha256=first.target_sha256,
        notes=list(first.notes),
    )
    if save:
        save_record(record, results)
    return record
