"""Run a model on a dataset phase: fit, predict, score, record.

``run(model, dataset, phase, seed)`` is the library form of ``nlbsuite run``; it returns the
:class:`~nlbsuite.results.ResultRecord` and writes it (plus the pickled fitted model as the
run's artifact) unless told not to. A finished run is not redone unless ``overwrite``.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlbsuite.adapter import ModelAdapter, resolve_device, seed_everything
from nlbsuite.data import PhaseData, Rates
from nlbsuite.datasets import load_dataset
from nlbsuite.evaluation import evaluate
from nlbsuite.fileio import atomic_write_bytes
from nlbsuite.provenance import data_hash, git_commit, now_iso, package_versions
from nlbsuite.registry import get_model_class
from nlbsuite.results import (
    ResultRecord,
    default_results_dir,
    load_record,
    record_path,
    save_record,
)

ARTIFACTS_ENV = "NLBSUITE_RUNS"


@dataclass
class Prediction:
    """A fitted model, its predicted rates and how long fit and predict took."""

    model: ModelAdapter
    rates: Rates
    fit_seconds: float
    predict_seconds: float


def make_model(
    model: str | ModelAdapter,
    preset: str = "cpu",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> ModelAdapter:
    """An adapter instance from a registered name (with preset and overrides) or as given."""
    if isinstance(model, ModelAdapter):
        return model
    cls = get_model_class(model)
    return cls(cls.make_config(preset, overrides), seed=seed)


def fit_predict(
    model: str | ModelAdapter,
    data: PhaseData,
    *,
    preset: str = "cpu",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Prediction:
    """Fit ``model`` on ``data.model_input()`` and predict rates for train and eval trials."""
    adapter = make_model(model, preset, seed, overrides)
    inputs = data.model_input()
    seed_everything(seed)
    start = time.perf_counter()
    adapter.fit(inputs)
    fitted = time.perf_counter()
    rates = adapter.predict(inputs)
    done = time.perf_counter()
    rates.check(data)
    return Prediction(adapter, rates, fitted - start, done - fitted)


def default_artifacts_dir(results_dir: Path) -> Path:
    """``$NLBSUITE_RUNS``, else ``runs/`` beside the results folder (git-ignored)."""
    if os.environ.get(ARTIFACTS_ENV):
        return Path(os.environ[ARTIFACTS_ENV])
    return results_dir.parent / "runs"


def save_artifact(model: ModelAdapter, path: Path) -> None:
    """Pickle the fitted adapter atomically."""
    atomic_write_bytes(path, pickle.dumps(model))


def load_run_model(record: str | Path | ResultRecord) -> ModelAdapter:
    """The fitted adapter saved with a run (``record``: a result JSON path or record)."""
    from nlbsuite.errors import UserError

    if isinstance(record, ResultRecord):
        rec, base = record, Path.cwd()
    else:
        rec, base = load_record(record), Path(record).resolve().parent
    path = base / rec.artifact if rec.artifact else None  # relative to the record's folder
    if path is None or not path.exists():
        raise UserError(
            f"run {rec.run_id}: no saved model (artifact {rec.artifact!r} missing); "
            "rerun it with --overwrite to save one"
        )
    with open(path, "rb") as f:
        return pickle.load(f)


def run(
    model: str | ModelAdapter = "smoothing",
    dataset: str | PhaseData = "lorenz",
    phase: str = "val",
    seed: int = 0,
    *,
    preset: str = "cpu",
    overrides: dict[str, Any] | None = None,
    bin_width_ms: int | None = None,
    results_dir: str | Path | None = None,
    artifacts_dir: str | Path | None = None,
    overwrite: bool = False,
    save: bool = True,
) -> ResultRecord:
    """Fit ``model`` on ``dataset``'s train trials, score its eval rates, record the result.

    ``dataset`` is a registered name or a loaded :class:`PhaseData`. With ``save`` the
    record goes to ``results_dir`` (default :func:`default_results_dir`) and the fitted model
    to ``artifacts_dir``; an existing record for the same run and data is returned as is
    unless ``overwrite``.
    """
    data = (
        dataset
        if isinstance(dataset, PhaseData)
        else load_dataset(dataset, phase=phase, bin_width_ms=bin_width_ms)
    )
    adapter = make_model(model, preset, seed, overrides)
    name = adapter.info.name
    digest = data_hash(data)
    results = Path(results_dir) if results_dir is not None else default_results_dir()
    probe = ResultRecord(
        model=name,
        preset=preset,
        config=adapter.config.to_dict(),
        config_hash=adapter.config.hash(),
        dataset=data.dataset,
        bin_width_ms=data.bin_width_ms,
        phase=data.phase,
        seed=seed,
        metrics={},
        fit_seconds=0.0,
        predict_seconds=0.0,
        n_parameters=0,
        data_source=data.source,
        data_hash=digest,
    )
    existing = record_path(results, probe)
    if save and not overwrite and existing.exists():
        old = load_record(existing)
        if old.data_hash == digest:
            return old

    pred = fit_predict(adapter, data, seed=seed)
    metrics = evaluate(data, pred.rates)
    record = probe
    record.metrics = metrics
    record.fit_seconds = round(pred.fit_seconds, 3)
    record.predict_seconds = round(pred.predict_seconds, 3)
    record.n_parameters = int(adapter.n_parameters())
    record.extras = dict(getattr(adapter, "extras", {}))  # what the fit chose, if it says
    record.device = resolve_device(getattr(adapter.config, "device", "cpu"))
    versions = package_versions()
    record.nlbsuite_version = versions.get("nlbsuite", "")
    record.git_commit = git_commit()
    record.date = now_iso()
    record.packages = versions
    if save:
        artifacts = (
            Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir(results)
        )
        artifact = artifacts / f"{record.run_id}.pkl"
        save_artifact(adapter, artifact)
        record.artifact = os.path.relpath(artifact.resolve(), results.resolve())
        save_record(record, results)
    return record
