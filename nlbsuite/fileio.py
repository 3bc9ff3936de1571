"""Atomic file writes: the one way nlbsuite puts a file on disk.

Every file (result records, leaderboard tables, pickled models, cache entries, submissions,
exported tensors, figures, synthetic NWB files) is written to a temporary file in the target's
folder, flushed to disk (fsync), given the usual mode (0666 minus the umask) and renamed over
the target. A reader sees the old file or the new one, never half of one; a failed or killed
write leaves at most a hidden ``.NAME.*.tmp`` file, never a partial target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` on success.

    Use it for writers that need a file name (h5py, ``np.savez``, pynwb)::

        with atomic_path(out) as tmp:
            with h5py.File(tmp, "w") as f:
                ...

    ``suffix`` ends the temporary name (e.g. ``".npz"`` for writers that append one).
    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see the module docstring)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_move(src: str | Path, dest: str | Path) -> Path:
    """Put the finished file ``src`` (in ``dest``'s folder, e.g. a completed download) at
    ``dest`` in one step: flushed to disk, then renamed over ``dest``."""
    src, dest = Path(src), Path(dest)
    with open(src, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(src, dest)
    _fsync_dir(dest.parent)
    return dest
