"""NLB's released test-split evaluation targets: fetch, verify, read lazily.

In January 2026 NLB published the EvalAI annotation file of the NLB'21 test phase in the
nlb_tools repository (``data/eval_data_test.h5``, stored with Git LFS). It is the only way
to score a test-phase submission comparably with the published leaderboard.

- :func:`fetch_test_targets` downloads it (standard library only): resumable through an
  HTTP ``Range`` request on the ``.part`` file, size- and sha256-checked, renamed into place
  through :func:`nlbsuite.fileio.atomic_move`. Offline it fails in under 2 s with one line
  that says where to put a copy by hand.
- :func:`targets_path` is the verified file (the sha256 is remembered against the
  file's (size, mtime, inode), so it is computed once); a file of the wrong size or checksum
  is refused, never used.
- :class:`TestTargets` opens it and reads only the groups asked for, each checked against
  the dataset's sizes (:func:`expected_sizes`).

The file holds one group per dataset key (``mc_maze``, ``mc_maze_20``, ...,
``mc_maze_small_20``), each in nlb_tools' ``make_eval_target_tensors`` layout: the content
of ``eval_target.h5`` for the test split (train = train + val trials).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlbsuite.catalog import DatasetCard, DatasetKey, ordered_keys
from nlbsuite.errors import UserError

URL = (
    "https://media.githubusercontent.com/media/neurallatents/nlb_tools/main/data/eval_data_test.h5"
)
SIZE = 105_927_616
SHA256 = "f2f434d30193251b58e6a693381fdd185c8fbc0e47d38f8810e65295bc42c865"
FILE_NAME = "eval_data_test.h5"
SUBDIR = "nlb_test_targets"
CONNECT_DEADLINE_S = 1.5
READ_TIMEOUT_S = 60.0
CHUNK = 1 << 20


def default_dir(data_dir: str | Path | None = None) -> Path:
    """``<data dir>/nlb_test_targets`` (data dir: ``$NLBSUITE_DATA`` or the user cache)."""
    from nlbsuite.nlb.prepare import data_dir as default_data_dir

    return (Path(data_dir) if data_dir is not None else default_data_dir()) / SUBDIR


def _by_hand(dest: Path, size: int, sha256: str, url: str) -> str:
    return f"download {url} ({size} bytes, sha256 {sha256}) elsewhere and copy it to {dest}"


def verify(path: Path, size: int | None = None, sha256: str | None = None) -> Path:
    """``path`` if it has ``size`` bytes and sha256 ``sha256`` (default: the released
    file's), else :class:`UserError`.

    The checksum is remembered against (size, mtime, inode), so a verified file is hashed
    once (:func:`nlbsuite.nlb.cache.file_digest`).
    """
    from nlbsuite.nlb.cache import file_digest

    size, sha256 = size or SIZE, sha256 or SHA256
    got = path.stat().st_size
    if got != size:
        raise UserError(
            f"{path}: {got} bytes, expected {size} (sha256 {sha256}); refusing to use it: "
            "delete it and run 'nlbsuite fetch test-targets' again"
        )
    digest = file_digest(path)
    if digest != sha256:
        raise UserError(
            f"{path}: sha256 {digest}, expected {sha256}; refusing to use it: "
            "delete it and run 'nlbsuite fetch test-targets' again"
        )
    return path


def targets_path(
    data_dir: str | Path | None = None, *, size: int | None = None, sha256: str | None = None
) -> Path:
    """The fetched, verified released targets; :class:`UserError` saying how to get them."""
    size, sha256 = size or SIZE, sha256 or SHA256
    path = default_dir(data_dir) / FILE_NAME
    if not path.is_file():
        raise UserError(
            f"{path}: NLB's released test targets are not here; run "
            f"'nlbsuite fetch test-targets' (or {_by_hand(path, size, sha256, URL)}), "
            "or pass --target FILE"
        )
    return verify(path, size, sha256)


def _open(url: str, start: int, timeout: float) -> Any:
    """GET ``url`` (redirects followed) from byte ``start``; the response object."""
    from nlbsuite.nlb.fetch import check_reachable

    headers = {"User-Agent": "nlbsuite", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    check_reachable(url, CONNECT_DEADLINE_S)
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _resumes_at(response: Any, start: int) -> bool:
    """True when a ``Range`` answer continues at ``start`` (206 with a matching range)."""
    if start == 0 or response.status != 206:
        return False
    content_range = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {start}-")


def fetch_test_targets(
    data_dir: str | Path | None = None,
    *,
    url: str = URL,
    size: int = SIZE,
    sha256: str = SHA256,
    timeout: float = READ_TIMEOUT_S,
    progress: bool = False,
) -> Path:
    """Download (or finish downloading) the released test targets; returns the verified path.

    The file goes to ``<data_dir or $NLBSUITE_DATA or user cache>/nlb_test_targets/``. An
    interrupted download leaves ``eval_data_test.h5.part``, which the next call continues
    with an HTTP ``Range`` request (from the start when the server ignores it). The whole
    file is checked (size, sha256) before it is renamed into place; a mismatch discards it.
    ``progress``: a progress bar on stderr.
    """
    from nlbsuite.fileio import atomic_move

    folder = default_dir(data_dir)
    dest = folder / FILE_NAME
    if dest.exists():
        return verify(dest, size, sha256)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (FILE_NAME + ".part")
    start = part.stat().st_size if part.is_file() else 0
    if start > size:
        part.unlink()
        start = 0
    if start < size:
        try:
            response = _open(url, start, timeout)
        except UserError:
            raise UserError(
                f"cannot reach {url} to fetch {FILE_NAME}; {_by_hand(dest, size, sha256, url)}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", None) or exc
            raise UserError(
                f"{url}: download of {FILE_NAME} failed ({why}); "
                f"{_by_hand(dest, size, sha256, url)}"
            ) from None
        with response:
            if not _resumes_at(response, start):
                start = 0
            _copy(response, part, start, size, url, progress)
    with open(part, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    got = part.stat().st_size
    if got != size or digest != sha256:
        part.unlink()
        raise UserError(
            f"{url}: the downloaded {FILE_NAME} does not match (expected {size} bytes, "
            f"sha256 {sha256}; got {got} bytes, sha256 {digest}); discarded it, run "
            "'nlbsuite fetch test-targets' again"
        )
    atomic_move(part, dest)
    return dest


def _copy(response: Any, part: Path, start: int, size: int, url: str, progress: bool) -> None:
    """Append the response body to ``part`` (truncated to ``start`` first)."""
    from tqdm import tqdm

    bar = tqdm(
        total=size,
        initial=start,
        unit="B",
        unit_scale=True,
        desc=FILE_NAME,
        disable=not progress,
        file=sys.stderr,
    )
    with open(part, "r+b" if start else "wb") as f, bar:
        f.truncate(start)
        f.seek(start)
        try:
            while block := response.read(CHUNK):
                f.write(block)
                bar.update(len(block))
        except OSError as exc:
            raise UserError(
                f"{url}: download interrupted after {f.tell()} of {size} bytes ({exc}); run "
                "'nlbsuite fetch test-targets' again to resume"
            ) from None
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------------------------------
# Layout: one group per dataset key, checked against the dataset's sizes
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """Sizes of a dataset's test-phase target group (None: not known in advance).

    ``n_eval``: test trials; ``n_train``: train + val trials (the test phase's training set).
    """

    n_eval: int | None = None
    n_train: int | None = None


def expected_sizes(card: DatasetCard) -> Expected:
    """Trial counts fixed in advance: the scaling datasets' (their test splits have 100
    trials each, the genuine MC_Maze_Small and MC_Maze_Medium test NWBs; NLB's paper for
    MC_Maze_Large, and train + val 100/250/500 trials: the card's ``test_sizes``)."""
    if card.scaling_prefix is None or card.test_sizes is None:
        return Expected()
    n_train, n_eval = card.test_sizes
    return Expected(n_eval=n_eval, n_train=n_train)


REQUIRED = (
    "eval_spikes_heldout",
    "eval_spikes_heldin_forward",
    "eval_spikes_heldout_forward",
    "train_behavior",
    "eval_behavior",
)
OPTIONAL = (
    "psth",
    "eval_cond_idx",
    "train_cond_idx",
    "train_decode_mask",
    "eval_decode_mask",
    "eval_jitter",
    "train_jitter",
)


def expected_shapes(
    key: str, n_eval: int | None = None, n_train: int | None = None
) -> dict[str, tuple[int | None, ...]]:
    """Shapes of the arrays of target group ``key``; trial counts from :func:`expected_sizes`,
    else ``n_eval`` / ``n_train``, else None (any)."""
    dataset_key = DatasetKey.parse(key)
    card, bin_ms = dataset_key.card, dataset_key.bin_width_ms
    shape = card.shape
    fixed = expected_sizes(card)
    n_eval = fixed.n_eval or n_eval
    n_train = fixed.n_train or n_train
    bins, fwd = shape.bins(bin_ms)
    n_in, n_out = shape.n_heldin, shape.n_heldout
    # Per-trial behaviour fields (DMFC_RSG: is_eye, theta, is_short, ts, tp) or velocity.
    per_trial = card.behavior_metric == "tp corr"
    beh = (len(card.tensor_spec.behavior_fields),) if per_trial else (bins, 2)
    return {
        "eval_spikes_heldout": (n_eval, bins, n_out),
        "eval_spikes_heldin_forward": (n_eval, fwd, n_in),
        "eval_spikes_heldout_forward": (n_eval, fwd, n_out),
        "train_behavior": (n_train, *beh),
        "eval_behavior": (n_eval, *beh),
        "psth": (None, bins, n_in + n_out),
        "train_decode_mask": (n_train, 2),
        "eval_decode_mask": (n_eval, 2),
        "eval_jitter": (n_eval,),
        "train_jitter": (n_train,),
    }


def _fits(shape: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected, strict=True)
    )


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"


def check_group(key: str, group: Any, where: str = "test targets") -> list[str]:
    """:class:`UserError` naming every missing or misshapen array of ``group``; returns
    the names of unexpected items (the scorer ignores them) as one-line notes.

    Trial counts not fixed in :func:`expected_sizes` are taken from ``eval_spikes_heldout`` and
    ``train_behavior``, so every array must agree with those two.
    """
    first = {k: group[k].shape[0] for k in ("eval_spikes_heldout", "train_behavior") if k in group}
    shapes = expected_shapes(key, first.get("eval_spikes_heldout"), first.get("train_behavior"))
    problems = [f"missing '{k}'" for k in REQUIRED if k not in group]
    extra = [k for k in group if k not in REQUIRED + OPTIONAL]
    for name, exp in shapes.items():
        got = tuple(group[name].shape) if name in group else None
        if got is not None and not _fits(got, exp):
            problems.append(f"'{name}' has shape {got}, expected {_fmt(exp)}")
    if "psth" in group and "eval_cond_idx" not in group:
        problems.append("'psth' without 'eval_cond_idx'")
    if problems:
        raise UserError(f"{where} group '{key}': {'; '.join(problems)}")
    return [f"{where} group '{key}': unexpected '{k}' (not scored)" for k in extra]


class TestTargets:
    """The released test targets, opened read-only; groups are read (and checked) on demand.

    ``with TestTargets() as t: t.keys(); t.group("mc_maze_small")`` — the group is an
    ``h5py.Group`` whose arrays stay on disk until read (the scorer reads what it needs).
    """

    __test__ = False  # not a pytest class

    def __init__(self, path: str | Path | None = None):
        import h5py

        self.path = Path(path) if path is not None else targets_path()
        try:
            self._file = h5py.File(self.path, "r")
        except OSError:
            raise UserError(f"{self.path}: not an HDF5 file") from None
        self._checked: set[str] = set()
        self.notes: list[str] = []  # unexpected items of the groups read so far

    def keys(self) -> list[str]:
        """Dataset keys in nlb_tools' order (unknown keys are refused by name)."""
        keys = list(self._file)
        for k in keys:
            DatasetKey.parse(k)
        return ordered_keys(keys)

    def __contains__(self, key: str) -> bool:
        return key in self._file

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __getitem__(self, key: str) -> Any:
        return self.group(key)

    def group(self, key: str) -> Any:
        """The checked group of dataset ``key`` (e.g. ``mc_maze_small_20``)."""
        if key not in self._file:
            raise UserError(f"{self.path}: no group '{key}' (groups: {', '.join(self.keys())})")
        if key not in self._checked:
            self.notes += check_group(key, self._file[key], str(self.path))
            self._checked.add(key)
        return self._file[key]

    def groups(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: checked group}`` for the ``keys`` the file has (others left out);
        :class:`UserError` when it has none of them."""
        keys = list(keys)
        found = {k: self.group(k) for k in keys if k in self._file}
        if not found:
            raise UserError(
                f"{self.path}: none of {', '.join(keys) or 'no groups'} is a group of the "
                f"released test targets (groups: {', '.join(self.keys())})"
            )
        return found

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TestTargets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def open_test_targets(path: str | Path | None = None) -> Iterator[TestTargets]:
    """:class:`TestTargets` as a context manager (the fetched file by default)."""
    targets = TestTargets(path)
    try:
        yield targets
    finally:
        targets.close()
