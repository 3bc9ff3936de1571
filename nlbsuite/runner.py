"""Run a model on a dataset phase: fit, predict, score, record.

``run(model, dataset, phase, seed)`` is the library form of ``nlbsuite run``; it returns the
:class:`~nlbsuite.results.ResultRecord` and writes it (plus the pickled fitted model as the
run's artifact, and beside it what the report's figures need: :mod:`nlbsuite.predictions`)
unless told not to. A record states exactly what ran: the seed and config of
the adapter that was fitted, and the preset they came from ("custom" for an instance whose
config matches no preset). A finished run is reused (and says so) only while its data, the
nlbsuite version and the model's code are unchanged; otherwise it is redone (saying why).
:func:`run_seeds` runs several seeds on data loaded once; :func:`submit` writes one
submission file for several dataset keys.

In the test phase (:mod:`nlbsuite.testphase`) the model is fitted on every train-split trial
and predicts the test trials; the run writes its submission file and scores it against
``target`` or NLB's released targets when fetched. Without targets nothing is recorded: the
returned record has no metrics, names the submission and says how to get the targets.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nlbsuite import __version__
from nlbsuite.adapter import ModelAdapter, resolve_device, seed_everything
from nlbsuite.catalog import DEFAULT_DATASET, DatasetKey
from nlbsuite.configfile import resolve_preset
from nlbsuite.data import EvalTarget, PhaseData, Rates
from nlbsuite.datasets import load_dataset
from nlbsuite.errors import UserError
from nlbsuite.predictions import prediction_arrays, save_arrays
from nlbsuite.provenance import code_fingerprint, data_hash, git_commit, now_iso, package_versions
from nlbsuite.registry import get_model_class
from nlbsuite.results import (
    ResultRecord,
    default_results_dir,
    load_record,
    portable_source,
    record_path,
    save_record,
    write_result_file,
)
from nlbsuite.scoring import evaluate

if TYPE_CHECKING:  # pragma: no cover
    from nlbsuite.scoring.rules import Problem

ARTIFACTS_ENV = "NLBSUITE_RUNS"


@dataclass
class Prediction:
    """A fitted model, its predicted rates and how long fit and predict took."""

    model: ModelAdapter
    rates: Rates
    fit_seconds: float
    predict_seconds: float


def _preset_of(adapter: ModelAdapter) -> list[str]:
    """The presets whose config equals ``adapter``'s ("cpu", the default, first)."""
    cls = type(adapter)
    found = []
    for name in sorted(cls.presets, key=lambda p: p != "cpu"):
        try:
            config = cls.make_config(name)
        except UserError:  # a preset this config class cannot build
            continue
        if type(config) is type(adapter.config) and config.to_dict() == adapter.config.to_dict():
            found.append(name)
    return found


def make_model(
    model: str | ModelAdapter,
    preset: str | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[ModelAdapter, str, int]:
    """The adapter to run with the preset name and seed its record states.

    A registered name is built from ``preset`` (default "cpu"; or a config file's path,
    :mod:`nlbsuite.configfile`, recorded under the file's name) with ``overrides`` and
    ``seed`` (default 0). An instance runs as built, so its own seed and config are recorded:
    a different ``seed``, a ``preset`` its config does not equal, or ``overrides`` are a
    :class:`UserError`; its preset is the one its config equals, else "custom".
    """
    if not isinstance(model, ModelAdapter):
        cls = get_model_class(model)
        preset, seed = preset or "cpu", 0 if seed is None else seed
        base, saved, label = resolve_preset(preset, model)  # a name or a config file
        config = cls.make_config(base, {**saved, **(overrides or {})})
        return cls(config, seed=seed), label, seed
    if seed is not None and seed != model.seed:
        raise UserError(
            f"seed={seed} but the model instance was built with seed={model.seed}; "
            f"build it with seed={seed} or leave seed unset"
        )
    if overrides:
        raise UserError(
            f"overrides={overrides!r} cannot change a model instance; build it with that config"
        )
    presets = _preset_of(model)
    if preset is not None and preset not in presets:
        equal = f"preset '{presets[0]}'" if presets else "no preset"
        raise UserError(
            f"preset='{preset}' but the model instance's config equals {equal}; "
            "leave preset unset to record what ran"
        )
    return model, preset or (presets[0] if presets else "custom"), model.seed


def fit_predict(
    model: str | ModelAdapter,
    data: PhaseData,
    *,
    preset: str | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> Prediction:
    """Fit ``model`` on ``data.model_input()`` and predict rates for train and eval trials
    (``model``, ``preset``, ``seed``, ``overrides`` as in :func:`make_model`)."""
    adapter, _, seed = make_model(model, preset, seed, overrides)
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


def load_run_model(record: str | Path | ResultRecord) -> ModelAdapter:
    """The fitted adapter saved with a run (``record``: a result JSON path or record)."""
    if isinstance(record, ResultRecord):
        rec, base = record, Path.cwd()
    else:
        rec, base = load_record(record), Path(record).resolve().parent
    path = base / rec.artifact if rec.artifact else None  # relative to the record's folder
    if path is None or not path.exists():
        raise UserError(
            f"run {rec.run_id}: no saved model (artifact {rec.artifact!r} missing); "
            "rerun it with overwrite=True (--overwrite) to save one"
        )
    with open(path, "rb") as f:
        return pickle.load(f)


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def reusable(path: Path, probe: ResultRecord) -> tuple[ResultRecord | None, str]:
    """The finished record at ``path`` if it may stand for ``probe``'s run, else why not
    ("" when there is none): same data, nlbsuite version and model code fingerprint."""
    if not path.exists():
        return None, ""
    try:
        old = load_record(path)
    except UserError as exc:
        return None, f"{exc}; replacing it"
    where = shown(path)
    if old.data_hash != probe.data_hash:
        return None, f"data changed since {where}"
    if old.nlbsuite_version != probe.nlbsuite_version:
        return None, (
            f"nlbsuite changed ({old.nlbsuite_version or 'unknown'} -> "
            f"{probe.nlbsuite_version}) since {where}"
        )
    if not old.code_fingerprint:
        return None, f"{where} has no model code fingerprint (an older record)"
    if old.code_fingerprint != probe.code_fingerprint:
        return None, f"model code changed since {where}"
    return old, ""


def plan_record(
    adapter: ModelAdapter, data: PhaseData, preset: str, seed: int, target_sha256: str = ""
) -> ResultRecord:
    """The record of running ``adapter`` (built by :func:`make_model`) on ``data`` before it
    runs: its run key, data hash and code fingerprint, no metrics yet. Its
    :func:`~nlbsuite.results.record_path` and :func:`reusable` tell whether the run is done.
    ``target_sha256``: test phase, the target file's checksum (part of the run key unless it
    is NLB's released file)."""
    return ResultRecord(
        model=adapter.info.name,
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
        data_source=portable_source(data.source),
        data_hash=data_hash(data),
        nlbsuite_version=__version__,
        code_fingerprint=code_fingerprint(type(adapter)),
        target_sha256=target_sha256,
        notes=list(data.meta.get("notes", [])),
    )


def execute(
    adapter: ModelAdapter, data: PhaseData, record: ResultRecord, target: EvalTarget | None = None
) -> Prediction:
    """Fit and score ``adapter`` on ``data``, filling ``record`` (from :func:`plan_record`)
    with the metrics, timings and provenance; nothing is written. Returns the prediction.

    ``target`` (test phase): what the eval rates are scored against; the model never sees
    it. A test phase without one leaves the metrics empty. Metrics the data cannot support
    (``data.meta["not_scored"]``, said in ``record.notes``) are left out."""
    pred = fit_predict(adapter, data, seed=record.seed)
    describe(record, data, pred, target)
    return pred


def describe(
    record: ResultRecord, data: PhaseData, pred: Prediction, target: EvalTarget | None = None
) -> None:
    """Fill ``record`` with the scores of ``pred`` on ``data`` (against ``target``, as in
    :func:`execute`), its timings, the fitted model's parameter count and what its fit
    chose, and the provenance."""
    adapter = pred.model
    if target is not None:
        data = replace(data, target=target)
    if data.target is not None or data.phase != "test":
        metrics = evaluate(data, pred.rates)
        skip = data.meta.get("not_scored", ())
        record.metrics = {k: v for k, v in metrics.items() if k not in skip}
    record.fit_seconds = round(pred.fit_seconds, 3)
    record.predict_seconds = round(pred.predict_seconds, 3)
    record.n_parameters = int(adapter.n_parameters())
    record.extras = dict(getattr(adapter, "extras", {}))  # what the fit chose, if it says
    record.device = resolve_device(getattr(adapter.config, "device", "cpu"))
    record.git_commit = git_commit()
    record.date = now_iso()
    record.packages = package_versions()


def store(
    record: ResultRecord,
    adapter: ModelAdapter | bytes,
    figures: dict[str, np.ndarray],
    results_dir: Path,
    artifacts_dir: Path | None = None,
) -> Path:
    """Write the fitted ``adapter`` (or its pickle) and the ``figures`` arrays
    (:func:`~nlbsuite.predictions.prediction_arrays`) under ``artifacts_dir`` (default
    :func:`default_artifacts_dir`), then ``record`` under ``results_dir``; returns the
    record's path. No model files are left without the record that describes them."""
    results = Path(results_dir)
    artifacts = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir(results)
    artifact = artifacts / f"{record.run_id}.pkl"
    write_result_file(artifact, adapter if isinstance(adapter, bytes) else pickle.dumps(adapter))
    arrays = artifact.with_suffix(".npz")
    record.artifact = os.path.relpath(artifact.resolve(), results.resolve())
    try:
        save_arrays(arrays, figures)
        return save_record(record, results)
    except BaseException:
        artifact.unlink(missing_ok=True)
        arrays.unlink(missing_ok=True)
        raise


def run(
    model: str | ModelAdapter = "smoothing",
    dataset: str | PhaseData = DEFAULT_DATASET,
    phase: str = "val",
    seed: int | None = None,
    *,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    bin_width_ms: int | None = None,
    target: str | Path | None = None,
    results_dir: str | Path | None = None,
    artifacts_dir: str | Path | None = None,
    overwrite: bool = False,
    save: bool = True,
    log: Callable[[str], None] | None = print,
) -> ResultRecord:
    """Fit ``model`` on ``dataset``'s train trials, score its eval rates, record the result.

    ``model``: a registered name (built from ``preset``, default "cpu", ``overrides`` and
    ``seed``, default 0) or an adapter instance (run with its own seed and config; see
    :func:`make_model`). ``dataset`` is a registered name or a loaded :class:`PhaseData`
    (its own phase then applies). With ``save`` the record goes to ``results_dir`` (default
    :func:`default_results_dir`) and the fitted model to ``artifacts_dir``. An existing
    record of the same run is returned as is unless ``overwrite`` or it is stale
    (:func:`reusable`); ``log`` is told which ("reused ..." or "rerunning: ...").

    Test phase: the submission goes to ``artifacts_dir`` as ``<run id>.h5`` (also when not
    ``save``-ing the record); it is scored against ``target`` (an eval-target file), else the
    fetched released targets; with neither the record is returned unsaved, without metrics.
    """
    say = log or (lambda _: None)
    data = (
        dataset
        if isinstance(dataset, PhaseData)
        else load_dataset(dataset, phase=phase, bin_width_ms=bin_width_ms)
    )
    adapter, preset, seed = make_model(model, preset, seed, overrides)
    results = Path(results_dir) if results_dir is not None else default_results_dir()
    artifacts = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir(results)
    target_path, sha = None, ""
    if data.phase == "test":
        from nlbsuite.nlb.cache import file_digest
        from nlbsuite.testphase import find_target

        if len(data.train_spikes_heldin) == 0:
            raise UserError(
                f"{data.key} (test): no train trials; the test phase trains on the train NWB "
                "file's train + val trials: give both NWB files (--nwb TRAIN.nwb TEST.nwb), or "
                "a val-phase tensor file and the test NWB (--data VAL.h5 --nwb TEST.nwb)"
            )

        target_path = find_target(target)
        sha = file_digest(target_path) if target_path is not None else ""
    record = plan_record(adapter, data, preset, seed, sha)
    path = record_path(results, record)
    if save and not overwrite and (data.phase != "test" or target_path is not None):
        old, why = reusable(path, record)
        if old is not None:
            say(f"reused {shown(path)}; --overwrite (overwrite=True) to refit")
            return old
        if why:
            say(f"rerunning: {why}")
    scored = data
    if target_path is not None:
        from nlbsuite.testphase import read_target

        scored = replace(data, target=read_target(target_path, data.key))
    pred = execute(adapter, data, record, scored.target if target_path is not None else None)
    if data.phase == "test":
        from nlbsuite.submission import write_submission

        sub = write_submission(artifacts / f"{record.run_id}.h5", {data.key: pred.rates})
        record.submission = os.path.relpath(sub.resolve(), results.resolve())
        if target_path is None:
            from nlbsuite.testphase import how_to_get_targets

            say(f"wrote {shown(sub)}; {how_to_get_targets()}")
            return record
    if save:
        if "vel R2" in data.meta.get("not_scored", ()) and scored.target is not None:
            # behaviour that cannot be paired with the train rates draws no figure either
            unpaired = replace(scored.target, train_behavior=None, eval_behavior=None)
            scored = replace(scored, target=unpaired)
        figures = prediction_arrays(scored, pred.rates, adapter)
        store(record, adapter, figures, results, artifacts)
    return record


def run_seeds(
    model: str | ModelAdapter,
    dataset: str | PhaseData = DEFAULT_DATASET,
    seeds: Iterable[int] = (0,),
    phase: str = "val",
    *,
    bin_width_ms: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> list[ResultRecord]:
    """:func:`run` once per seed on data loaded once (``kwargs`` as :func:`run`'s); a
    progress bar over seeds when there are several and ``progress``."""
    from tqdm import tqdm

    seeds = list(seeds)
    data = (
        dataset
        if isinstance(dataset, PhaseData)
        else load_dataset(dataset, phase=phase, bin_width_ms=bin_width_ms)
    )
    name = model if isinstance(model, str) else model.info.name
    bar = tqdm(seeds, desc=f"{name} on {data.key}", unit="seed", disable=not progress or len(seeds) < 2)
    return [run(model, data, seed=seed, **kwargs) for seed in bar]


@dataclass
class Submission:
    """A written submission file: its groups, the problems validation found, timings."""

    path: Path
    keys: list[str]
    problems: list[Problem]
    fit_seconds: dict[str, float]

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def submit(
    model: str | ModelAdapter,
    datasets: Sequence[str | PhaseData],
    path: str | Path,
    *,
    phase: str = "test",
    preset: str | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    merge: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> Submission:
    """Fit ``model`` on each dataset and write one submission file holding every group.

    ``datasets``: dataset keys (``"mc_maze"``, ``"mc_maze_20"``, ...; loaded for ``phase``
    from the data dir) or loaded :class:`PhaseData`. Each key is fitted with a fresh adapter
    built from ``preset``/``seed``/``overrides`` (``model`` may be an instance only for one
    dataset). ``merge``: keep the other groups of an existing file. The file is written once,
    atomically, after every fit, then validated against the dataset sizes
    (:func:`~nlbsuite.submission.validate_submission`, plus the test phase's trial counts
    where they are fixed: :func:`~nlbsuite.submission.catalog_problems`).
    """
    from tqdm import tqdm

    from nlbsuite.submission import catalog_problems, validate_submission, write_submission

    say = log or (lambda _: None)
    require_one = isinstance(model, ModelAdapter) and len(datasets) > 1
    if require_one:
        raise UserError("a model instance can fit one dataset; pass the model's name instead")
    groups: dict[str, Rates] = {}
    phases: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for item in tqdm(datasets, desc="submission", unit="dataset", disable=not progress):
        data = item if isinstance(item, PhaseData) else _load_key(item, phase)
        if data.key in groups:
            raise UserError(f"dataset key '{data.key}' given twice", "datasets")
        pred = fit_predict(model, data, preset=preset, seed=seed, overrides=overrides)
        groups[data.key] = pred.rates
        phases[data.key] = data.phase
        seconds[data.key] = round(pred.fit_seconds, 3)
        say(f"{data.key} ({data.phase}): fit {pred.fit_seconds:.1f} s")
    out = write_submission(path, groups, merge=merge)
    problems = validate_submission(out) + catalog_problems(out, phases)
    return Submission(out, list(groups), problems, seconds)


def _load_key(key: str, phase: str) -> PhaseData:
    dataset, bin_ms = DatasetKey.parse(key)
    return load_dataset(dataset, phase=phase, bin_width_ms=bin_ms)
