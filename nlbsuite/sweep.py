"""Sweeps on Ray: the cross product models x datasets x bins x presets x ``--set`` grid x
seeds, each run a Ray task, resumable and with one writer.

- The driver (this process) loads each dataset once, builds every run's record probe
  (:func:`nlbsuite.runner.plan_record`) and skips runs whose record exists with the same run
  key, data hash, nlbsuite version and code fingerprint (:func:`nlbsuite.runner.reusable`).
- Ray runs the rest, at most as many at once as the cluster has room for (``cpus_per_run``,
  ``gpus_per_run`` per task); a worker fits and scores
  (:func:`nlbsuite.runner.execute`) and returns the record, the pickled model and the
  report's arrays. Only the driver writes: each record atomically as it arrives
  (:func:`nlbsuite.runner.store`), the leaderboard once at the end. Killing the sweep loses
  only the runs in flight; running it again does the rest.
- A run that raises, or whose worker dies (out of memory, killed), is written as a failure
  file ``<runs>/failed/<run id>.json`` (its error and traceback) and the others go on; the
  next sweep tries it again. :class:`SweepReport` counts done, reused and failed runs.

Ray is an optional dependency (``pip install "nlbsuite[sweep]"``), imported only here and in
:mod:`nlbsuite.tune`, when a sweep starts. ``address=None`` starts a local Ray for the
sweep; ``"auto"`` or ``"HOST:PORT"`` joins a running cluster, whose nodes need the same
nlbsuite (a worker whose model code differs from the driver's fails its run, saying so).
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from nlbsuite import __version__
from nlbsuite.errors import UserError

INSTALL_HINT = 'pip install "nlbsuite[sweep]"'


def import_ray() -> ModuleType:
    """The ``ray`` module, or a :class:`UserError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"Ray is not installed; {INSTALL_HINT} (Ray and Ray Tune)") from None
    return ray


def split_values(text: str) -> list[str]:
    """``"1,(2, 3),[4]"`` -> ``["1", "(2, 3)", "[4]"]``: commas outside brackets split."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_grid(items: Iterable[str]) -> list[dict[str, Any]]:
    """``["alpha=0.1,1", "kern_sd_ms=40"]`` -> the cross product of the values as override
    dicts (Python literals, else strings): ``[{alpha: 0.1, kern_sd_ms: 40}, {alpha: 1, ...}]``."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or not raw:
            raise UserError(f"--set '{item}': expected KEY=V1,V2,..., e.g. --set alpha=0.1,1")
        values = []
        for text in split_values(raw):
            try:
                values.append(ast.literal_eval(text))
            except (ValueError, SyntaxError):
                values.append(text)
        axes[key] = values
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep, as the command line names it."""

    model: str
    dataset: str
    bin_width_ms: int | None
    preset: str
    overrides: tuple[tuple[str, Any], ...]
    seed: int
    phase: str = "val"

    def label(self) -> str:
        sets = "".join(f" {k}={v}" for k, v in self.overrides)
        bins = f" {self.bin_width_ms} ms" if self.bin_width_ms else ""
        return f"{self.model} {self.preset}{sets} on {self.dataset}{bins} seed {self.seed}"


def plan(
    models: list[str],
    datasets: list[str],
    *,
    bins: list[int | None] | None = None,
    seeds: list[int] | None = None,
    presets: list[str] | None = None,
    grid: list[dict[str, Any]] | None = None,
    phase: str = "val",
) -> list[RunSpec]:
    """The cross product as :class:`RunSpec` s (defaults: the dataset's bin width, seed 0,
    preset "cpu", no overrides)."""
    return [
        RunSpec(m, d, b, p, tuple(sorted(g.items())), s, phase)
        for m, d, b, p, g, s in itertools.product(
            models, datasets, bins or [None], presets or ["cpu"], grid or [{}], seeds or [0]
        )
    ]


@dataclass
class Failure:
    """A run that did not finish: its label, run id and the error's last line."""

    label: str
    run_id: str
    error: str
    path: Path


@dataclass
class SweepReport:
    """What a sweep did: records written and reused, failures, wall time."""

    done: list[Path] = field(default_factory=list)
    reused: list[Path] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [
            f"sweep: {len(self.done)} run(s) done, {len(self.reused)} reused, "
            f"{len(self.failed)} failed in {self.seconds:.1f} s"
        ]
        lines += [f"  FAILED {f.label}: {f.error} ({f.path})" for f in self.failed]
        return "\n".join(lines)


def _load(spec: RunSpec) -> Any:
    """The dataset of ``spec``: a registered name, or a tensor file in nlb_tools' h5
    layout (a name ending in ``.h5``; dataset and bin width read from the file name)."""
    from nlbsuite.datasets import load_dataset

    if spec.dataset.endswith(".h5"):
        if not Path(spec.dataset).exists():
            raise UserError(f"{spec.dataset}: file not found", "datasets")
        return load_dataset(
            None, phase=spec.phase, bin_width_ms=spec.bin_width_ms, path=spec.dataset
        )
    return load_dataset(spec.dataset, phase=spec.phase, bin_width_ms=spec.bin_width_ms)


def _config_fields(models: set[str]) -> dict[str, set[str]]:
    """Each model's config field names (a ``--set`` key applies to the models that have it)."""
    from nlbsuite.registry import get_model_class

    return {
        m: {f.name for f in dataclasses.fields(get_model_class(m).config_class)} for m in models
    }


def _worker_result(adapter: Any, data: Any, probe: Any) -> dict[str, Any]:
    """Fit and score one run in a Ray worker: the driver built the (unfitted) ``adapter``
    and its record ``probe``. Returns what the driver writes, or the error. The model code
    the worker imports must be the driver's (same fingerprint and nlbsuite version)."""
    from nlbsuite.predictions import prediction_arrays
    from nlbsuite.provenance import code_fingerprint
    from nlbsuite.runner import execute

    try:
        here = (code_fingerprint(type(adapter)), __version__)
        if here != (probe.code_fingerprint, probe.nlbsuite_version):
            raise UserError(
                f"the worker's {probe.model} code or nlbsuite version differs from the "
                "driver's; install the same nlbsuite on every node"
            )
        pred = execute(adapter, data, probe)
        return {
            "record": probe,
            "model": pickle.dumps(adapter),
            "figures": prediction_arrays(data, pred.rates, adapter),
        }
    except Exception as exc:  # reported to the driver, which records the failure
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def _start_ray(ray: ModuleType, address: str | None) -> bool:
    """Start or join Ray unless this process already did; True if this call started it."""
    if ray.is_initialized():
        return False
    root = str(Path(__file__).resolve().parents[1])  # workers import this nlbsuite
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": {"PYTHONPATH": path}}}
    try:
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        else:
            ray.init(address=address, log_to_driver=False, **kwargs)
    except ConnectionError as exc:
        raise UserError(f"cannot join Ray at {address!r}: {exc}", "address") from None
    return True


def _slots(ray: ModuleType, cpus: float, gpus: float) -> int:
    """How many runs the cluster can hold at once."""
    total = ray.cluster_resources()
    fits = [total.get("CPU", 1) / cpus] if cpus > 0 else []
    if gpus > 0:
        fits.append(total.get("GPU", 0) / gpus)
    n = int(min(fits)) if fits else 1
    if n < 1:
        raise UserError(
            f"the Ray cluster has {total.get('CPU', 0):g} CPU(s), {total.get('GPU', 0):g} "
            f"GPU(s): too few for one run of {cpus:g} CPU(s), {gpus:g} GPU(s)",
            "cpus_per_run",
        )
    return n


def record_failure(folder: Path, spec: RunSpec, run_id: str, error: str, trace: str) -> Path:
    """Write ``<folder>/<run id>.json`` (the run, its error, traceback and date)."""
    from nlbsuite.provenance import now_iso
    from nlbsuite.results import write_result_file

    raw = {
        "run_id": run_id,
        "run": spec.label(),
        "spec": {**spec.__dict__, "overrides": dict(spec.overrides)},
        "status": "failed",
        "error": error,
        "traceback": trace,
        "date": now_iso(),
    }
    path = folder / f"{run_id}.json"
    write_result_file(path, json.dumps(raw, indent=2, default=str) + "\n")
    return path


def sweep(
    specs: list[RunSpec],
    *,
    results_dir: str | Path | None = None,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    overwrite: bool = False,
    leaderboard: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> SweepReport:
    """Run ``specs`` on Ray (see the module docstring) and return what happened.

    Records go to ``results_dir`` (default :func:`~nlbsuite.results.default_results_dir`),
    models and failure files beside it (:func:`~nlbsuite.runner.default_artifacts_dir`).
    Bad names, presets or config keys are a :class:`UserError` before Ray starts.
    """
    from nlbsuite.results import default_results_dir, record_path
    from nlbsuite.runner import default_artifacts_dir, make_model, plan_record, reusable, store

    start = time.perf_counter()
    results = Path(results_dir) if results_dir is not None else default_results_dir()
    failed_dir = default_artifacts_dir(results) / "failed"
    report = SweepReport()
    data_of: dict[tuple[str, int | None, str], Any] = {}
    todo: dict[str, tuple[RunSpec, Any, Any]] = {}  # run id -> (spec, adapter, record probe)
    test = sorted({spec.label() for spec in specs if spec.phase != "val"})
    if test:
        raise UserError(
            f"a sweep runs the val phase; test-phase runs (scored once, with a fixed "
            f"config) go through nlbsuite run --phase test: {test[0]}",
            "phase",
        )
    fields = _config_fields({spec.model for spec in specs})
    unknown = {k for spec in specs for k, _ in spec.overrides} - set().union(*fields.values())
    if unknown:
        raise UserError(
            f"config key(s) {', '.join(sorted(unknown))} belong to none of the models "
            f"{', '.join(sorted(fields))}",
            "grid",
        )
    for spec in specs:
        key = (spec.dataset, spec.bin_width_ms, spec.phase)
        if key not in data_of:
            data_of[key] = _load(spec)
        data = data_of[key]
        overrides = {k: v for k, v in spec.overrides if k in fields[spec.model]}
        adapter, preset, seed = make_model(spec.model, spec.preset, spec.seed, overrides)
        probe = plan_record(adapter, data, preset, seed)
        if probe.run_id in todo:
            continue
        path = record_path(results, probe)
        if not overwrite and reusable(path, probe)[0] is not None:
            report.reused.append(path)
            continue
        todo[probe.run_id] = (spec, adapter, probe)
    log(f"sweep: {len(specs)} run(s): {len(report.reused)} already recorded, {len(todo)} to run")

    def finish(run_id: str, result: dict[str, Any]) -> bool:
        """Write a finished run's files (the one writer), or its failure file."""
        spec = todo[run_id][0]
        if "error" in result:
            path = record_failure(failed_dir, spec, run_id, result["error"], result["traceback"])
            report.failed.append(Failure(spec.label(), run_id, result["error"], path))
            return False
        report.done.append(store(result["record"], result["model"], result["figures"], results))
        (failed_dir / f"{run_id}.json").unlink(missing_ok=True)  # an older failure, now done
        return True
    if todo:
        ray = import_ray()
        started = _start_ray(ray, address)
        try:
            _execute_all(ray, todo, data_of, cpus_per_run, gpus_per_run, progress, finish)
        finally:
            if started:
                ray.shutdown()
    if leaderboard and report.done:
        from nlbsuite.leaderboard import write_leaderboard

        write_leaderboard(results)
    report.seconds = time.perf_counter() - start
    return report


def _execute_all(
    ray: ModuleType,
    todo: dict[str, tuple[RunSpec, Any, Any]],
    data_of: dict[tuple[str, int | None, str], Any],
    cpus: float,
    gpus: float,
    progress: bool,
    finish: Callable[[str, dict[str, Any]], bool],
) -> None:
    """Submit ``todo`` as Ray tasks, at most as many at once as the cluster holds, and hand
    each result to ``finish(run id, result)`` (True: done, False: failed) as it arrives."""
    from tqdm import tqdm

    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_worker_result)
    refs = {key: ray.put(data) for key, data in data_of.items()}
    queue = list(todo.items())
    slots = _slots(ray, cpus, gpus)
    running: dict[Any, str] = {}
    n_failed = 0

    def status() -> str:
        return (
            f"done {bar.n - n_failed}, running {len(running)}, failed {n_failed}, "
            f"left {len(queue)}"
        )

    bar = tqdm(total=len(queue), desc="sweep", unit="run", disable=not progress)
    with bar:
        while queue or running:
            while queue and len(running) < slots:
                run_id, (spec, adapter, probe) = queue.pop(0)
                data = refs[(spec.dataset, spec.bin_width_ms, spec.phase)]
                running[task.remote(adapter, data, probe)] = run_id
                bar.set_postfix_str(status())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=2.0)
            for ref in ready:
                run_id = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker died: out of memory, killed, ...
                    name = type(exc).__name__
                    last = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ""
                    result = {"error": f"{name}: {last}", "traceback": str(exc)}
                n_failed += not finish(run_id, result)
                bar.update(1)
                bar.set_postfix_str(status())
