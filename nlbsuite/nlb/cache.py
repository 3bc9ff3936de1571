"""Content-keyed cache of prepared :class:`~nlbsuite.data.PhaseData`.

Key: sha256 of the dataset spec, bin width, phase, seed, this module's format version
and the sha256 of every source file. A file's digest is computed once and remembered
(``digests.json``) against its size, mtime and inode, so a cached reload does not re-read
gigabytes; a changed file gets a new digest and therefore a new key (the old entry is
stale and removed when the new one is written).

Entries are single ``.npz`` files written atomically (:mod:`nlbsuite.fileio`), so a crash never leaves a half-written entry. ``.npz`` members carry CRC-32
checksums that numpy's loader verifies: a corrupt or truncated entry fails to load, is
deleted and rebuilt.

Location: ``$NLBSUITE_CACHE``, else ``<data dir>/prepared``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from nlbsuite.data import EvalTarget, GroundTruth, PhaseData
from nlbsuite.fileio import atomic_path, atomic_write_text
from nlbsuite.nlb.specs import DatasetSpec

FORMAT_VERSION = "nlbsuite-nlb-cache-1"


def cache_dir() -> Path:
    env = os.environ.get("NLBSUITE_CACHE")
    if env:
        return Path(env).expanduser()
    from nlbsuite.nlb.prepare import data_dir

    return data_dir() / "prepared"


# ----------------------------------------------------------------------------------------
# Keys
# ----------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered against (size, mtime_ns, inode)."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    memo_path = cache_dir() / "digests.json"
    memo: Any = {}
    with contextlib.suppress(OSError, ValueError):
        memo = json.loads(memo_path.read_text())
    if not isinstance(memo, dict):  # a corrupt memo is only a slower digest
        memo = {}
    hit = memo.get(str(path))
    if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    digest = _sha256(path)
    memo[str(path)] = {"stamp": stamp, "sha256": digest}
    with contextlib.suppress(OSError):
        atomic_write_text(memo_path, json.dumps(memo, indent=0, sort_keys=True))
    return digest


def key_for(spec: DatasetSpec, bin_ms: int, phase: str, seed: int, paths: list[Path]) -> str:
    """Cache key: a name prefix (readable) plus the content hash."""
    parts = {
        "format": FORMAT_VERSION,
        "spec": json.loads(spec.to_json()),
        "bin_ms": bin_ms,
        "phase": phase,
        "seed": seed,
        "files": sorted(file_digest(p) for p in paths),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    return f"{spec.name}_{bin_ms}ms_{phase}_seed{seed}_{digest}"


def _entry(key: str) -> Path:
    return cache_dir() / f"{key}.npz"


# ----------------------------------------------------------------------------------------
# PhaseData <-> flat arrays
# ----------------------------------------------------------------------------------------


def _flatten(data: PhaseData) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "dataset": data.dataset,
        "bin_width_ms": data.bin_width_ms,
        "phase": data.phase,
        "source": data.source,
        "meta": data.meta,
        "target": data.target is not None,
        "truth": data.truth is not None,
        "lists": {},
    }
    skip = {"dataset", "bin_width_ms", "phase", "source", "meta", "target", "truth"}
    for f in dataclasses.fields(PhaseData):
        val = getattr(data, f.name)
        if f.name not in skip and val is not None:
            arrays[f.name] = np.asarray(val)
    for prefix, obj in (("target.", data.target), ("truth.", data.truth)):
        if obj is None:
            continue
        for f in dataclasses.fields(obj):
            val = getattr(obj, f.name)
            if val is None:
                continue
            if isinstance(val, list):  # ragged index lists -> values + lengths
                meta["lists"][prefix + f.name] = True
                arrays[prefix + f.name + ".len"] = np.array([len(v) for v in val], dtype=np.int64)
                arrays[prefix + f.name] = (
                    np.concatenate([np.asarray(v, dtype=np.int64) for v in val])
                    if val
                    else np.zeros(0, np.int64)
                )
            else:
                arrays[prefix + f.name] = np.asarray(val)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def _unflatten(arrays: dict[str, np.ndarray]) -> PhaseData:
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    groups: dict[str, dict[str, Any]] = {"": {}, "target.": {}, "truth.": {}}
    for name, val in arrays.items():
        if name == "__meta__" or name.endswith(".len"):
            continue
        prefix = next((p for p in ("target.", "truth.") if name.startswith(p)), "")
        field = name[len(prefix) :]
        if meta["lists"].get(name):
            lengths = arrays[name + ".len"]
            val = list(np.split(val, np.cumsum(lengths)[:-1])) if len(lengths) else []
        groups[prefix][field] = val
    return PhaseData(
        dataset=meta["dataset"],
        bin_width_ms=meta["bin_width_ms"],
        phase=meta["phase"],
        source=meta["source"],
        meta=meta["meta"],
        target=EvalTarget(**groups["target."]) if meta["target"] else None,
        truth=GroundTruth(**groups["truth."]) if meta["truth"] else None,
        **groups[""],
    )


# ----------------------------------------------------------------------------------------
# Load / store
# ----------------------------------------------------------------------------------------


def load(key: str) -> PhaseData | None:
    """The cached entry, or None if absent; a corrupt entry is deleted (None)."""
    path = _entry(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        data = _unflatten(arrays)
        if data.meta.get("cache_key") != key:
            raise ValueError("entry does not belong to this key")
        return data
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        EOFError,
        zipfile.BadZipFile,
        json.JSONDecodeError,
    ):
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def store(key: str, data: PhaseData) -> Path:
    """Write ``data`` under ``key`` atomically; remove stale entries of the same dataset."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data.meta["cache_key"] = key
    path = _entry(key)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **_flatten(data))
    stem = key.rsplit("_", 1)[0]
    for old in folder.glob(f"{stem}_*.npz"):
        if old != path and old.name.rsplit("_", 1)[0] == stem:
            with contextlib.suppress(OSError):
                old.unlink()
    return path
