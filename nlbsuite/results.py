"""Result records: one self-describing JSON file per run, written atomically.

A record names the model (with its preset, full config and config hash), the dataset (key,
bin width, phase, data hash), the seed, every metric, fit/predict seconds, the parameter
count, and the provenance (nlbsuite version, git commit, package versions, date).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nlbsuite.errors import UserError
from nlbsuite.fileio import atomic_write_text

SCHEMA_VERSION = 1
RESULTS_ENV = "NLBSUITE_RESULTS"


@dataclass
class ResultRecord:
    """One run of one model on one dataset phase with one seed."""

    model: str
    preset: str
    config: dict[str, Any]
    config_hash: str
    dataset: str
    bin_width_ms: int
    phase: str
    seed: int
    metrics: dict[str, float]
    fit_seconds: float
    predict_seconds: float
    n_parameters: int
    data_source: str = ""
    data_hash: str = ""
    device: str = "cpu"
    nlbsuite_version: str = ""
    git_commit: str = ""
    date: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    artifact: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    @property
    def dataset_key(self) -> str:
        return self.dataset if self.bin_width_ms == 5 else f"{self.dataset}_{self.bin_width_ms}"

    @property
    def run_id(self) -> str:
        """Unique name of the run: dataset key, phase, model, preset, config hash, seed."""
        return (
            f"{self.dataset_key}__{self.phase}__{self.model}__{self.preset}-"
            f"{self.config_hash}__seed{self.seed}"
        )

    def to_json(self) -> str:
        def clean(x: Any) -> Any:  # JSON has no NaN: store null
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            return x

        return json.dumps(clean(asdict(self)), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> ResultRecord:
        names = {f.name for f in fields(cls)}
        required = {
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        }
        missing = sorted(required - set(raw))
        if missing:
            raise UserError(f"{source}: result record is missing key(s) {', '.join(missing)}")
        if not isinstance(raw.get("metrics"), dict):
            raise UserError(f"{source}: result record key 'metrics' must be an object")
        metrics = {k: float("nan") if v is None else float(v) for k, v in raw["metrics"].items()}
        return cls(**{**{k: v for k, v in raw.items() if k in names}, "metrics": metrics})


def default_results_dir() -> Path:
    """``$NLBSUITE_RESULTS``, else ``leaderboard/results`` of the enclosing project (the first
    parent of the working directory that has a ``leaderboard`` folder), else ``./leaderboard/results``."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    cwd = Path.cwd().resolve()
    for parent in (cwd, *cwd.parents):
        if (parent / "leaderboard").is_dir() and (parent / "pyproject.toml").exists():
            return parent / "leaderboard" / "results"
    return cwd / "leaderboard" / "results"


def record_path(results_dir: Path, record: ResultRecord) -> Path:
    return Path(results_dir) / f"{record.run_id}.json"


def save_record(record: ResultRecord, results_dir: Path) -> Path:
    path = record_path(results_dir, record)
    atomic_write_text(path, record.to_json())
    return path


def load_record(path: str | Path) -> ResultRecord:
    """Read one result JSON; a corrupt or incomplete file is a :class:`UserError`."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: result file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a valid result JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: result JSON must be an object, got {type(raw).__name__}")
    return ResultRecord.from_dict(raw, source=str(path))


def load_records(results_dir: str | Path) -> list[ResultRecord]:
    """All records under ``results_dir`` (recursively), sorted by run id."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"{results_dir}: results directory not found")
    records = [load_record(p) for p in sorted(results_dir.rglob("*.json"))]
    return sorted(records, key=lambda r: r.run_id)
