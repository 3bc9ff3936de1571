"""What a result record says about where it came from: versions, git commit, date, hashes
of the data and of the model's code."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from nlbsuite.data import PhaseData

_PACKAGES = ("numpy", "scipy", "scikit-learn", "h5py", "pandas", "torch", "torchsde")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that can change a result."""
    from nlbsuite import __version__

    out = {"python": platform.python_version(), "nlbsuite": __version__}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def git_commit(path: Path | None = None) -> str:
    """HEAD commit of the nlbsuite checkout (``+dirty`` if modified), or "unknown"."""
    cwd = path or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def code_fingerprint(cls: type) -> str:
    """sha256 of the source file that defines ``cls``; for a model in a package folder under
    ``baselines/`` (``baselines/lowrank_rnn/``), of every ``.py`` file of that package, so a
    change anywhere in the model's code shows. "" when the class has no source file."""
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return ""
    package_name = _model_package(cls.__module__)
    package = sys.modules.get(package_name) if package_name else None
    return _fingerprint(Path(file), Path(getattr(package, "__file__", None) or ""))


def source_fingerprint(target: str) -> str:
    """The :func:`code_fingerprint` that the class at ``target`` (``"module:attr"``, a
    registry entry) has now, read from its source files without importing the module (its
    parent packages are imported, as for any module lookup). "" when it cannot be found."""
    import importlib.util

    module_name = target.partition(":")[0]
    package_name = _model_package(module_name)
    try:
        spec = importlib.util.find_spec(module_name)
        package = importlib.util.find_spec(package_name) if package_name else None
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.has_location or not spec.origin:
        return ""
    package_init = Path(package.origin) if package is not None and package.origin else Path("")
    return _fingerprint(Path(spec.origin), package_init)


def _model_package(module_name: str) -> str | None:
    """``baselines.<model>`` for a module of a built-in model (a package or a file), else
    None: the unit whose files the fingerprint covers."""
    parts = module_name.split(".")
    return ".".join(parts[:2]) if parts[0] == "baselines" else None


def _fingerprint(file: Path, package_init: Path) -> str:
    """sha256 over ``file``, or over every ``.py`` file of the package whose ``__init__.py``
    is ``package_init`` (when it is one)."""
    if package_init.name == "__init__.py":  # baselines/<model>/ is a package: all of it
        root = package_init.resolve().parent
        files = sorted(root.rglob("*.py"))
    else:
        path = file.resolve()
        root, files = path.parent, [path]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def data_hash(data: PhaseData) -> str:
    """Content hash of everything a run reads: model inputs and the evaluation target."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{data.dataset}|{data.bin_width_ms}|{data.phase}".encode())
    arrays: dict[str, object] = {
        "train_spikes_heldin": data.train_spikes_heldin,
        "train_spikes_heldout": data.train_spikes_heldout,
        "eval_spikes_heldin": data.eval_spikes_heldin,
        "train_spikes_heldin_forward": data.train_spikes_heldin_forward,
        "train_spikes_heldout_forward": data.train_spikes_heldout_forward,
        "train_behavior": data.train_behavior,
    }
    if data.target is not None:
        arrays.update({f"target.{k}": v for k, v in data.target.arrays().items()})
    for key in sorted(arrays):
        value = arrays[key]
        if value is None:
            continue
        h.update(key.encode())
        for arr in value if isinstance(value, list) else [value]:
            a = np.ascontiguousarray(arr)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
    return h.hexdigest()
