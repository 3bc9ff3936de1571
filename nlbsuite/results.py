"""Result records: one self-describing JSON file per run, written atomically.

A record names the model (with its preset, full config and config hash), the dataset (key,
bin width, phase, data hash, a portable description of the source: file names, never
folders), the seed, every metric, fit/predict seconds, the parameter count, and the
provenance (nlbsuite version, the model code's fingerprint, git commit, package versions,
date). A test-phase record also carries the sha256 of the target file it was scored against
and the submission file it wrote. :class:`RunKey` is the one definition of "the same run up
to the seed", used by the leaderboard (rows, one table per dataset key and phase) and
``compare`` (matching). Older record formats are migrated on load (:func:`migrate`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, NamedTuple

from nlbsuite.catalog import DatasetKey
from nlbsuite.errors import UserError
from nlbsuite.fileio import atomic_write_bytes

SCHEMA_VERSION = 3
RESULTS_ENV = "NLBSUITE_RESULTS"
LOCK_NAME = ".lock"


class RunKey(NamedTuple):
    """What makes runs comparable: one model config on one dataset phase (seeds vary).

    ``phase`` is the record's :attr:`ResultRecord.phase_label`: ``test`` for NLB's released
    test targets, ``test@<sha8>`` for a test phase scored against another target file, so
    the two are never mixed in a table or a comparison.
    """

    model: str
    preset: str
    config_hash: str
    dataset: str
    bin_width_ms: int
    phase: str

    @property
    def dataset_key(self) -> str:
        return str(DatasetKey(self.dataset, self.bin_width_ms))

    def label(self) -> str:
        """``lorenz_20 / val / lowrank_rnn / cpu-3755e9ef16``"""
        return (
            f"{self.dataset_key} / {self.phase} / {self.model} / {self.preset}-{self.config_hash}"
        )


def _file_name(part: str) -> str:
    if "\\" in part or part[1:3] in (":/", ":\\"):  # a Windows path
        return PureWindowsPath(part).name
    return PurePosixPath(part).name if "/" in part else part


def portable_source(source: str) -> str:
    """``source`` with every path cut to its file name: ``"/data/a.h5, /data/b.h5"`` ->
    ``"a.h5, b.h5"``; descriptions without paths (``"lorenz(size=default, seed=0)"``) stay."""
    return ", ".join(_file_name(part) for part in source.split(", "))


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
    code_fingerprint: str = ""
    git_commit: str = ""
    date: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    artifact: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    target_sha256: str = ""  # test phase: sha256 of the target file the run was scored against
    submission: str | None = None  # test phase: the submission file, relative to the record
    notes: list[str] = field(default_factory=list)  # what the data could not support, and why
    schema: int = SCHEMA_VERSION

    @property
    def phase_label(self) -> str:
        """``val``; ``test`` when scored against NLB's released test targets (or not yet
        scored); ``test@<first 8 hex of the target's sha256>`` against any other target."""
        from nlbsuite.testtargets import SHA256

        if self.phase != "test" or self.target_sha256 in ("", SHA256):
            return self.phase
        return f"test@{self.target_sha256[:8]}"

    @property
    def run_key(self) -> RunKey:
        return RunKey(
            self.model,
            self.preset,
            self.config_hash,
            self.dataset,
            self.bin_width_ms,
            self.phase_label,
        )

    @property
    def dataset_key(self) -> str:
        return self.run_key.dataset_key

    @property
    def run_id(self) -> str:
        """Unique name of the run: dataset key, phase, model, preset, config hash, seed."""
        key = self.run_key
        return (
            f"{key.dataset_key}__{key.phase}__{key.model}__{key.preset}-{key.config_hash}"
            f"__seed{self.seed}"
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
        """A record from its JSON object, migrated from older schemas; a missing key or a
        value of the wrong type is a :class:`UserError` naming ``source`` and the key."""
        raw = migrate(raw, source)
        required = {
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        }
        missing = sorted(required - set(raw))
        if missing:
            raise UserError(f"{source}: result record is missing key(s) {', '.join(missing)}")
        values = {
            f.name: _checked(raw[f.name], f.type, f.name, source)
            for f in fields(cls)
            if f.name in raw
        }
        values["metrics"] = {
            name: _checked(value, "float", f"metrics.{name}", source)
            for name, value in values["metrics"].items()
        }
        return cls(**values)


# JSON types a field's annotation allows; floats may be null (NaN) and accept integers.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "dict": (dict,),
    "list": (list,),
}


def _checked(value: Any, annotation: str, key: str, source: str) -> Any:
    kind = annotation.split("[")[0].split(" |")[0]
    if value is None and kind == "float":
        return math.nan
    if value is None and "None" in annotation:
        return None
    if isinstance(value, bool) or not isinstance(value, _JSON_TYPES[kind]):
        expected = {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "list": "a list",
        }.get(kind, "an object")
        raise UserError(
            f"{source}: result record key '{key}' must be {expected}, got {json.dumps(value)[:40]}"
        )
    return float(value) if kind == "float" else value


def migrate(raw: dict[str, Any], source: str = "<dict>") -> dict[str, Any]:
    """A record's JSON object in the current schema (:data:`SCHEMA_VERSION`), one step at a
    time (the input is not changed).

    - 1 -> 2: ``data_source`` paths become file names (no machine paths), and the missing
      ``code_fingerprint`` becomes "" (matches no code, so the run is redone if asked).
    - 2 -> 3: test-phase fields added: ``target_sha256`` "" (no schema-2 record was
      scored on the test phase), ``submission`` None, ``notes`` [].
    """
    schema = raw.get("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise UserError(
            f"{source}: result record key 'schema' must be an integer from 1 to "
            f"{SCHEMA_VERSION}, got {schema!r}"
        )
    if schema > SCHEMA_VERSION:
        raise UserError(
            f"{source}: result record schema {schema} is newer than this nlbsuite "
            f"(reads up to {SCHEMA_VERSION}); upgrade nlbsuite"
        )
    raw = dict(raw)
    if schema == 1:
        if isinstance(raw.get("data_source"), str):
            raw["data_source"] = portable_source(raw["data_source"])
        raw.setdefault("code_fingerprint", "")
        schema = 2
    if schema == 2:
        raw.setdefault("target_sha256", "")
        raw.setdefault("submission", None)
        raw.setdefault("notes", [])
        schema = 3
    raw["schema"] = schema
    return raw


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


def write_result_file(path: Path, data: str | bytes) -> Path:
    """Write a record, model or leaderboard file atomically; a full disk is a
    :class:`UserError` naming ``path`` (nothing half-written, the old file intact)."""
    try:
        return atomic_write_bytes(path, data.encode() if isinstance(data, str) else data)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UserError(
                f"{path}: no space left on device; nothing written, earlier results intact"
            ) from None
        raise


@contextlib.contextmanager
def results_lock(results_dir: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``results_dir/.lock`` (POSIX ``flock``), so that "list the
    records, write the leaderboard" runs one process at a time and the last writer's table
    holds every record. Without ``fcntl`` or a writable folder it runs unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        handle = open(Path(results_dir) / LOCK_NAME, "a")  # noqa: SIM115 - held across yield
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # the lock is released when the file closes


def record_path(results_dir: Path, record: ResultRecord) -> Path:
    return Path(results_dir) / f"{record.run_id}.json"


def save_record(record: ResultRecord, results_dir: Path) -> Path:
    return write_result_file(record_path(results_dir, record), record.to_json())


def load_record(path: str | Path) -> ResultRecord:
    """Read one result JSON; a corrupt or incomplete file is a :class:`UserError`."""
    path = Path(path)
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: result file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: expected a result JSON file, found a folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a valid result JSON ({reason})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: result JSON must be an object, got {type(raw).__name__}")
    return ResultRecord.from_dict(raw, source=str(path))


def load_records(results_dir: str | Path) -> list[ResultRecord]:
    """All records under ``results_dir`` (recursively), sorted by run id; two files for one
    run (e.g. a copy in a subfolder) are a :class:`UserError`, never counted twice."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"{results_dir}: results directory not found")
    by_id: dict[str, Path] = {}
    records = []
    for path in sorted(results_dir.rglob("*.json")):
        rec = load_record(path)
        if rec.run_id in by_id:
            raise UserError(f"{path}: run {rec.run_id} is also recorded in {by_id[rec.run_id]}")
        by_id[rec.run_id] = path
        records.append(rec)
    return sorted(records, key=lambda r: r.run_id)
