"""Hyperparameter search on Ray Tune: random search, ASHA or population-based training.

``tune(model, dataset, search=..., samples=N)`` samples ``N`` configs from the model's
``search_space`` (:mod:`nlbsuite.searchspace`) on top of a base preset (a name, or a
config file such as an earlier search's result), fits each with one
seed on the train trials and scores it on the **val** phase's eval trials: selection uses
train/val only, never the test phase (:func:`nlbsuite.selection.forbid_test_selection`). Every trial is
recorded (a :class:`~nlbsuite.results.ResultRecord` per trial under
``<runs>/tune/<study>/trials/``, written by the driver, outside the leaderboard), and the
best config is saved as a named config file (:mod:`nlbsuite.configfile`) that ``run``,
``submit`` and ``sweep`` take as ``--preset FILE.json``.

- ``random``: independent trials (Ray Tune's basic variant generator).
- ``asha``: the same samples under the asynchronous successive-halving scheduler; a model
  with ``partial_fit`` is scored after each of ``iterations`` training steps and the worst
  are stopped early (a model without it reports once, so ASHA equals random search).
- ``pbt``: population-based training as AutoLFADS uses it: ``samples`` trials train in
  ``iterations`` steps; after each step but the last the worst quarter copies the fitted
  model of a trial in the best quarter (exploit, by the val metric) and perturbs the
  searched fields by x0.8 / x1.2 or resamples them (explore). Needs ``partial_fit``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlbsuite.adapter import ModelAdapter
from nlbsuite.configfile import ConfigFile, resolve_preset, save_config_file
from nlbsuite.errors import UserError, require
from nlbsuite.results import ResultRecord, write_result_file
from nlbsuite.selection import forbid_test_selection

SEARCHES = ("random", "asha", "pbt")


@dataclass
class TuneReport:
    """What a search did: every trial's record, the best one, the saved config file."""

    trials: list[ResultRecord]
    best: ResultRecord
    config_path: Path
    study_dir: Path
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, metric: str) -> str:
        best = self.best.metrics.get(metric, math.nan)
        lines = [
            f"tune: {len(self.trials)} trial(s), {len(self.failed)} failed, "
            f"{self.seconds:.1f} s; best val {metric} {best:.4f}",
            f"best config: {json.dumps(_searched(self.best), sort_keys=True)}",
            f"saved {self.config_path} (use: --preset {self.config_path})",
            f"trials recorded in {self.study_dir / 'trials'}",
        ]
        lines += [f"  FAILED {f}" for f in self.failed]
        return "\n".join(lines)


def _searched(record: ResultRecord) -> dict[str, Any]:
    return {k: record.config[k] for k in record.extras.get("searched", [])}


def _plain(value: Any) -> Any:
    """NumPy scalars from Ray's samplers as plain Python numbers (JSON, config hashes)."""
    return value.item() if hasattr(value, "item") else value


def _trial(
    config: dict[str, Any],
    *,
    model: type[ModelAdapter],
    preset: str,
    base_overrides: dict[str, Any],
    label: str,
    seed: int,
    data: Any,
    iterations: int,
    stepwise: bool,
) -> None:
    """One Ray Tune trial: fit (in ``iterations`` steps when ``stepwise``), score on val,
    report the metrics and the trial's record (as JSON) after each step. The config is
    ``preset`` with ``base_overrides`` and then the trial's sampled fields; records state
    ``label`` as their preset."""
    from ray import tune

    from nlbsuite.runner import Prediction, describe, execute, plan_record

    overrides = {**base_overrides, **{k: _plain(v) for k, v in config.items()}}
    adapter = model(model.make_config(preset, overrides), seed=seed)
    searched = {"searched": sorted(config)}

    def report(record: ResultRecord, **extra: Any) -> None:
        record.extras = {**record.extras, **searched}
        scores = {k: v for k, v in record.metrics.items() if math.isfinite(v)}
        tune.report({**scores, "record": record.to_json()}, **extra)

    if not stepwise:
        record = plan_record(adapter, data, label, seed)
        execute(adapter, data, record)
        report(record)
        return
    start, fit_seconds = 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # PBT's exploit: a better trial's model, this trial's config
        with checkpoint.as_directory() as folder:
            state = pickle.loads((Path(folder) / "trial.pkl").read_bytes())
        adapter, start, fit_seconds = state["adapter"], state["step"], state["fit_seconds"]
        adapter.config = dataclasses.replace(adapter.config, **overrides)
    inputs = data.model_input()
    epochs = max(1, getattr(adapter.config, "epochs", iterations) // iterations)
    for step in range(start, iterations):
        began = time.perf_counter()
        adapter.partial_fit(inputs, epochs)
        fitted = time.perf_counter()
        rates = adapter.predict(inputs)
        fit_seconds += fitted - began
        pred = Prediction(adapter, rates, fit_seconds, time.perf_counter() - fitted)
        record = plan_record(adapter, data, label, seed)
        describe(record, data, pred)
        record.extras["steps"] = step + 1
        with tempfile.TemporaryDirectory() as folder:
            state = {"adapter": adapter, "step": step + 1, "fit_seconds": fit_seconds}
            (Path(folder) / "trial.pkl").write_bytes(pickle.dumps(state))
            report(record, checkpoint=tune.Checkpoint.from_directory(folder))


def _scheduler(search: str, metric: str, mode: str, iterations: int, space: dict) -> Any:
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining, TrialScheduler

    time_attr = "training_iteration"  # Ray's count of a trial's reported results
    if search == "asha":
        return ASHAScheduler(
            time_attr=time_attr, max_t=iterations, grace_period=1, reduction_factor=2
        )
    if search == "pbt":

        class FinalStepKeptPBT(PopulationBasedTraining):
            """No exploit at a trial's last step: there it would only overwrite the trial's
            own final result with the donor's, paired with a perturbed config never trained."""

            def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
                if result.get(time_attr, 0) >= iterations:
                    return TrialScheduler.CONTINUE
                return super().on_trial_result(tune_controller, trial, result)

        return FinalStepKeptPBT(
            time_attr=time_attr,
            perturbation_interval=1,
            hyperparam_mutations=space,
            quantile_fraction=0.25,
            resample_probability=0.25,
        )
    return None


def tune(
    model: str | type[ModelAdapter],
    dataset: str,
    *,
    search: str = "random",
    samples: int = 8,
    preset: str = "cpu",
    seed: int = 0,
    bin_width_ms: int | None = None,
    phase: str = "val",
    metric: str = "co-bps",
    iterations: int = 4,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    results_dir: str | Path | None = None,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> TuneReport:
    """Search ``model``'s ``search_space`` on ``dataset``'s val phase (see the module
    docstring); returns the :class:`TuneReport`. ``out``: the config file to write
    (default ``configs/<model>_<dataset key>_<search>.json``)."""
    from nlbsuite.catalog import METRICS
    from nlbsuite.datasets import load_dataset
    from nlbsuite.registry import get_model_class
    from nlbsuite.results import default_results_dir
    from nlbsuite.runner import default_artifacts_dir
    from nlbsuite.searchspace import to_ray
    from nlbsuite.sweep import _start_ray, import_ray

    forbid_test_selection(phase, "nlbsuite tune")
    require(search in SEARCHES, f"expected one of {', '.join(SEARCHES)}", "search", search)
    require(samples >= 1, "expected at least 1 trial", "samples", samples)
    require(iterations >= 1, "expected at least 1 step", "iterations", iterations)
    cls = get_model_class(model) if isinstance(model, str) else model
    name = cls.info.name
    space = dict(getattr(cls, "search_space", {}) or {})
    require(bool(space), f"model '{name}' declares no search_space to tune", "model", name)
    stepwise = callable(getattr(cls, "partial_fit", None)) and search != "random"
    require(
        stepwise or search != "pbt",
        f"PBT needs a model that trains in steps (partial_fit); '{name}' has none: "
        "use --search random or asha",
        "search",
        search,
    )
    base, base_overrides, label = resolve_preset(preset, name)
    cls.make_config(base, base_overrides)  # a bad preset fails here, before Ray starts
    if metric not in METRICS:
        raise UserError(f"unknown metric; known: {', '.join(METRICS)}", "metric", metric)
    mode = "max" if METRICS[metric].higher_is_better else "min"
    data = load_dataset(dataset, phase=phase, bin_width_ms=bin_width_ms)
    results = Path(results_dir) if results_dir is not None else default_results_dir()
    study = f"{name}_{data.key}_{search}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    study_dir = (default_artifacts_dir(results) / "tune" / f"{study}_{stamp}").resolve()
    out = Path(out) if out is not None else Path("configs") / f"{study}.json"

    ray = import_ray()
    from ray import tune as rtune

    started = _start_ray(ray, address)
    start = time.perf_counter()
    try:
        trainable = rtune.with_resources(
            rtune.with_parameters(
                _trial,
                model=cls,
                preset=base,
                base_overrides=base_overrides,
                label=label,
                seed=seed,
                data=data,
                iterations=iterations,
                stepwise=stepwise,
            ),
            {"cpu": cpus_per_trial},
        )
        ray_space = {k: to_ray(d) for k, d in space.items()}
        tuner = rtune.Tuner(
            trainable,
            param_space=ray_space,
            tune_config=rtune.TuneConfig(
                metric=metric,
                mode=mode,
                num_samples=samples,
                reuse_actors=True,  # PBT's exploit restarts trials: keep their workers
                scheduler=_scheduler(search, metric, mode, iterations, ray_space),
            ),
            run_config=rtune.RunConfig(
                name="ray", storage_path=str(study_dir), verbose=1, log_to_file=True
            ),
        )
        grid = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    trials, failed = [], []
    for result in grid:
        if result.error is not None or "record" not in (result.metrics or {}):
            failed.append(f"{result.path}: {str(result.error).splitlines()[-1][:200]}")
            continue
        record = ResultRecord.from_dict(json.loads(result.metrics["record"]), "trial")
        record.extras["trial"] = str(result.metrics.get("trial_id") or Path(result.path).name)
        write_result_file(study_dir / "trials" / f"{record.extras['trial']}.json", record.to_json())
        trials.append(record)
    if not trials:
        raise UserError(f"all {samples} trial(s) failed: {failed[0] if failed else ''}")
    sign = 1 if mode == "max" else -1
    best = max(trials, key=lambda r: _score(r.metrics.get(metric, math.nan), sign))
    source = (
        f"nlbsuite tune --search {search} --samples {samples} --preset {label} on {data.key} "
        f"(val, seed {seed})"
    )
    overrides = {**base_overrides, **{k: best.config[k] for k in sorted(space)}}
    save_config_file(out, ConfigFile(name, base, dict(sorted(overrides.items())), source))
    report = TuneReport(trials, best, out, study_dir, failed, time.perf_counter() - start)
    log(report.summary(metric))
    return report


def _score(value: float, sign: int) -> float:
    """Larger is better: ``value`` signed by the metric's direction; NaN ranks last."""
    return sign * value if math.isfinite(value) else -math.inf
