"""Read NLB NWB files (h5py, no pynwb needed) onto one continuous 1 ms grid.

Mirrors nlb_tools' ``NWBDataset`` loading, without pandas:

- spikes are binned at 1 ms by decimal truncation (``int(round(t * 1000, 6))``); units
  split into held-in / held-out by the ``heldout`` column; time outside the first unit's
  ``obs_intervals`` is missing (NaN in nlb_tools);
- every TimeSeries of the file (acquisition, processing modules, ...) is a signal; one
  whose timestamps are off the 1 ms grid is dropped, as nlb_tools does;
- several files of one session are laid end to end as nlb_tools does: each starts on the
  first 100 ms boundary at least 50 ms after the previous one ends, trial ids continue,
  and the gap is missing data. Files are taken in sorted path order (nlb_tools' glob).

Times are kept as int64 nanoseconds (pandas' ``to_timedelta`` conversion, bit for bit);
:data:`NAT` marks a missing time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from nlbsuite.errors import UserError

NAT = np.iinfo(np.int64).min
NS_PER_MS = 1_000_000
SPLITS = ("train", "val", "test", "none")


def seconds_to_ns(values: np.ndarray) -> np.ndarray:
    """Float seconds -> int64 ns exactly as ``pd.to_timedelta(values, unit="s")`` (NaN -> NAT)."""
    v = np.asarray(values, dtype=np.float64)
    nan = ~np.isfinite(v)
    v = np.where(nan, 0.0, v)
    base = v.astype(np.int64)
    frac = np.round(v - base, 9)
    out = base * 1_000_000_000 + (frac * 1e9).astype(np.int64)
    out[nan] = NAT
    return out


# ----------------------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------------------


@dataclass
class TrialTable:
    """The trials table of all files, one row per trial in file order.

    Columns ending in ``_time`` (``stop_time`` renamed ``end_time``) are int64 ns with
    :data:`NAT` for missing; ``split`` is a str array; other numeric and boolean columns
    are float64 with NaN for missing; other string columns are object arrays.
    """

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["trial_id"])

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def split(self) -> np.ndarray:
        return self.columns["split"]

    def values(self, name: str, n: int | None = None) -> np.ndarray:
        """A column as float64 (times in seconds, missing -> NaN); all-NaN if absent."""
        if name not in self.columns:
            return np.full(len(self) if n is None else n, np.nan)
        col = self.columns[name]
        if name.endswith("_time"):
            out = col / 1e9
            out[col == NAT] = np.nan
            return out
        return np.asarray(col, dtype=np.float64)


@dataclass
class SpikeGroup:
    """Held-in or held-out units on the 1 ms grid.

    ``spike_ms``: the 1 ms index of every spike, unit after unit (``unit_start[u]`` to
    ``unit_start[u + 1]``), sorted in time within a unit; spikes in missing time are
    already dropped. ``valid_ms``: (n_ms,) False where nlb_tools holds NaN (outside
    obs_intervals, gaps between files).
    """

    unit_ids: np.ndarray
    spike_ms: np.ndarray
    unit_start: np.ndarray
    valid_ms: np.ndarray

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    def unit_spikes(self, unit: int) -> np.ndarray:
        return self.spike_ms[self.unit_start[unit] : self.unit_start[unit + 1]]

    def spike_unit(self) -> np.ndarray:
        """The unit (column) of every spike in ``spike_ms``."""
        return np.repeat(np.arange(self.n_units, dtype=np.int32), np.diff(self.unit_start))

    @classmethod
    def from_spikes(
        cls,
        unit_ids: np.ndarray,
        spike_ms: np.ndarray,
        spike_unit: np.ndarray,
        valid_ms: np.ndarray,
    ) -> SpikeGroup:
        """Build from (ms, unit) pairs in any order."""
        order = np.lexsort((spike_ms, spike_unit))
        counts = np.bincount(spike_unit, minlength=len(unit_ids))
        start = np.concatenate([[0], np.cumsum(counts)])
        return cls(unit_ids, spike_ms[order], start, valid_ms)


@dataclass
class Recording:
    """One session (one or more NWB files) on a continuous 1 ms grid of ``n_ms`` samples.

    ``signals``: the requested TimeSeries as (n_ms, dim) float arrays (NaN where absent);
    ``any_nan_ms``: (n_ms,) True where any loaded signal (spikes or any TimeSeries) is NaN,
    which decides the rows nlb_tools drops when NaNs are not allowed.
    """

    paths: tuple[Path, ...]
    n_ms: int
    trials: TrialTable
    heldin: SpikeGroup
    heldout: SpikeGroup | None
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    signal_dtypes: dict[str, np.dtype] = field(default_factory=dict)
    any_nan_ms: np.ndarray | None = None


# ----------------------------------------------------------------------------------------
# One file
# ----------------------------------------------------------------------------------------


@dataclass
class _TimeSeries:
    ms: np.ndarray  # 1 ms index of each sample
    data: np.ndarray  # (n, dim)


@dataclass
class _File:
    path: Path
    n_ms: int
    unit_ids: np.ndarray
    heldout: np.ndarray
    spike_ms: list[np.ndarray]  # per unit, 1 ms indices (not yet masked)
    first_obs: dict[bool, np.ndarray]  # heldout flag -> obs intervals of the group's first unit
    trials: dict[str, np.ndarray]
    series: dict[str, _TimeSeries | None]  # None: present but dropped (off-grid timestamps)


def _ragged(group: h5py.Group, name: str) -> list[np.ndarray]:
    data = group[name][()]
    index = group[f"{name}_index"][()].astype(np.int64)
    starts = np.concatenate([[0], index[:-1]])[: len(index)]  # no rows: no starts
    return [data[a:b] for a, b in zip(starts, index, strict=True)]


def _decode(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "OS":
        return np.array([x.decode() if isinstance(x, bytes) else str(x) for x in arr], dtype=object)
    return arr


def _read_trials(path: Path, f: h5py.File) -> dict[str, np.ndarray]:
    if "intervals/trials" not in f:
        raise UserError(f"{path}: no trials table (expected /intervals/trials)")
    group = f["intervals/trials"]
    cols: dict[str, np.ndarray] = {"trial_id": group["id"][()].astype(np.int64)}
    names = [
        c.decode() if isinstance(c, bytes) else str(c) for c in group.attrs.get("colnames", [])
    ]
    for name in names:
        if name not in group or f"{name}_index" in group:
            continue  # ragged columns (barrier_pos, target_pos lists) are not used
        arr = group[name][()]
        if arr.ndim != 1:
            continue
        cols[name] = _decode(arr)
    for need in ("start_time", "stop_time", "split"):
        if need not in cols:
            raise UserError(f"{path}: trials table has no '{need}' column")
    cols["end_time"] = cols.pop("stop_time")
    split = cols["split"]
    bad = sorted(set(split) - set(SPLITS))
    if bad:
        raise UserError(
            f"{path}: trials column 'split' has unknown value(s) {', '.join(map(repr, bad))} "
            f"(expected {', '.join(SPLITS)})"
        )
    return cols


def _timeseries_groups(f: h5py.File) -> dict[str, h5py.Group]:
    """Every TimeSeries nlb_tools' ``find_timeseries`` would see, by the name it gives it."""

    def is_ts(g: h5py.Group) -> bool:
        return "data" in g and ("timestamps" in g or "starting_time" in g)

    found: dict[str, h5py.Group] = {}
    containers = [f[p] for p in ("acquisition", "analysis", "stimulus/presentation") if p in f]
    if "processing" in f:
        containers += [m for m in f["processing"].values() if isinstance(m, h5py.Group)]
    for container in containers:
        for name, child in container.items():
            if not isinstance(child, h5py.Group):
                continue
            if is_ts(child):
                found[name] = child
            else:  # a multi-container interface (Position, BehavioralTimeSeries, ...)
                for sub, grand in child.items():
                    if isinstance(grand, h5py.Group) and is_ts(grand):
                        found[f"{name}_{sub}"] = grand
    return found


def _read_series(g: h5py.Group, n_ms: int) -> _TimeSeries | None:
    data = g["data"][()]
    if data.ndim == 1:
        data = data[:, None]
    if "timestamps" in g:
        seconds = g["timestamps"][()].astype(np.float64)
    else:
        start = float(g["starting_time"][()])
        rate = float(g["starting_time"].attrs["rate"])
        seconds = np.arange(data.shape[0]) / rate + start
    ns = seconds_to_ns(seconds)
    rounded = np.round(ns / 1e9, 6)
    ms = np.rint(rounded * 1000).astype(np.int64)
    grid = np.round(np.clip(ms, 0, max(n_ms - 1, 0)) / 1000, 6)
    if not np.all((ms >= 0) & (ms < n_ms) & (grid == rounded)):
        return None  # nlb_tools: "Dropping {key} due to timestamp mismatch"
    return _TimeSeries(ms=ms, data=data)


def _read_file(path: Path) -> _File:
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        raise UserError(f"{path}: is a directory (expected an NWB file)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not a readable NWB/HDF5 file ({exc})") from None
    try:
        with f:
            return _parse_file(path, f)
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError) as exc:
        raise UserError(f"{path}: corrupt or incomplete NWB file ({exc})") from None


def _parse_file(path: Path, f: h5py.File) -> _File:
    if "units" not in f:
        raise UserError(f"{path}: no units table (expected /units with spike_times)")
    units = f["units"]
    if "spike_times" not in units or "spike_times_index" not in units:
        raise UserError(f"{path}: units table has no 'spike_times' column")
    if "heldout" not in units:
        raise UserError(
            f"{path}: units table has no 'heldout' column (expected an NLB file with "
            "held-in/held-out units)"
        )
    unit_ids = units["id"][()].astype(np.int64)
    heldout = units["heldout"][()].astype(bool)
    spike_times = _ragged(units, "spike_times")
    trials = _read_trials(path, f)
    obs = _ragged(units, "obs_intervals") if "obs_intervals" in units else None

    # Grid end: the last obs_interval end over units (nlb_tools), else the last trial end.
    last_stop = float(trials["end_time"][-1]) if len(trials["end_time"]) else 0.0
    if obs is not None and len(obs) and all(len(o) for o in obs):
        n_ms = round(max(float(o[-1][-1]) for o in obs) * 1000.0)
    else:
        ends = [float(t.max()) for t in spike_times if len(t)] + [last_stop]  # any order
        n_ms = math.floor(round(max(ends) * 1000.0, 6)) + 1
    if n_ms < last_stop:  # nlb_tools compares ms with seconds here; kept as is
        n_ms = round(last_stop * 1000.0)

    spike_ms = []
    for uid, t in zip(unit_ids, spike_times, strict=True):
        ms = np.round(t.astype(np.float64) * 1000.0, 6).astype(np.int64)
        if len(ms) and (ms.min() < 0 or ms.max() >= n_ms):
            raise UserError(
                f"{path}: unit {uid} has spike times outside the recorded interval "
                f"[0, {n_ms / 1000:g}) s"
            )
        spike_ms.append(ms)
    first_obs: dict[bool, np.ndarray] = {}
    if obs is not None:
        for flag in (False, True):
            idx = np.flatnonzero(heldout == flag)
            if len(idx):
                first_obs[flag] = np.asarray(obs[idx[0]], dtype=np.float64).reshape(-1, 2)
    series = {name: _read_series(g, n_ms) for name, g in _timeseries_groups(f).items()}
    return _File(path, n_ms, unit_ids, heldout, spike_ms, first_obs, trials, series)


def _valid_mask(n_ms: int, intervals: np.ndarray | None) -> np.ndarray:
    """True inside the observation intervals (nlb_tools' ``make_mask`` negated)."""
    if intervals is None:
        return np.ones(n_ms, dtype=bool)
    valid = np.zeros(n_ms, dtype=bool)
    for start, end in intervals:
        a = int(np.ceil(np.round(start * 1000.0, 6)))
        b = int(np.floor(np.round(end * 1000.0, 6)))
        valid[max(a, 0) : max(b, 0)] = True
    return valid


# ----------------------------------------------------------------------------------------
# Several files -> one recording
# ----------------------------------------------------------------------------------------


def _file_offsets(files: list[_File]) -> list[int]:
    """Start (ms) of each file on the joint grid, as nlb_tools stacks multiple files."""
    offsets = [0]
    past_end = ((files[0].n_ms - 1) * NS_PER_MS) / 1e9 + round(50 * 1 / 1000, 4)
    for f in files[1:]:
        start = int(np.ceil(past_end * 10) * 100)
        offsets.append(start)
        past_end = ((start + f.n_ms - 1) * NS_PER_MS) / 1e9 + round(50 * 1 / 1000, 4)
    return offsets


def _group(files: list[_File], offsets: list[int], n_ms: int, heldout: bool) -> SpikeGroup | None:
    ids: list[int] = []
    for f in files:  # column order: first appearance, sorted by id within a file
        for uid in np.sort(f.unit_ids[f.heldout == heldout]):
            if uid not in ids:
                ids.append(int(uid))
    if not ids:
        return None
    col = {uid: i for i, uid in enumerate(ids)}
    valid = np.zeros(n_ms, dtype=bool)
    parts: list[list[np.ndarray]] = [[] for _ in ids]  # per unit, files in time order
    for f, off in zip(files, offsets, strict=True):
        members = np.flatnonzero(f.heldout == heldout)
        if len(members) == 0:
            continue  # the group is missing (NaN) over this file
        if len(members) != len(ids):
            raise UserError(
                f"{f.path}: has {len(members)} of the {len(ids)} "
                f"{'held-out' if heldout else 'held-in'} units of the session's other files"
            )
        file_valid = _valid_mask(f.n_ms, f.first_obs.get(heldout))
        valid[off : off + f.n_ms] = file_valid
        for u in members:
            ms = f.spike_ms[u]
            if len(ms) > 1 and np.any(ms[1:] < ms[:-1]):
                ms = np.sort(ms)
            parts[col[int(f.unit_ids[u])]].append(ms[file_valid[ms]] + off)
    flat = [np.concatenate(p) if p else np.zeros(0, np.int64) for p in parts]
    start = np.concatenate([[0], np.cumsum([len(x) for x in flat])]).astype(np.int64)
    spike_ms = np.concatenate(flat) if flat else np.zeros(0, np.int64)
    return SpikeGroup(np.array(ids), spike_ms, start, valid)


def _trial_table(files: list[_File], offsets: list[int]) -> TrialTable:
    names: list[str] = []
    for f in files:
        names += [n for n in f.trials if n not in names]
    n_total = sum(len(f.trials["trial_id"]) for f in files)
    columns: dict[str, np.ndarray] = {}
    for name in names:
        parts = []
        kinds = {f.trials[name].dtype.kind for f in files if name in f.trials}
        is_text = bool(kinds & {"O", "U", "S"})
        for f, off in zip(files, offsets, strict=True):
            n = len(f.trials["trial_id"])
            col = f.trials.get(name)
            if name.endswith("_time") and not is_text:
                part = (
                    np.full(n, NAT, np.int64)
                    if col is None
                    else seconds_to_ns(col.astype(np.float64))
                )
                part = np.where(part == NAT, NAT, part + off * NS_PER_MS)
            elif is_text:
                part = np.full(n, np.nan, dtype=object) if col is None else col.astype(object)
            else:
                part = np.full(n, np.nan) if col is None else col.astype(np.float64)
            parts.append(part)
        columns[name] = np.concatenate(parts) if parts else np.zeros(0)
    # trial ids continue across files (nlb_tools adds the running trial count)
    counts = np.cumsum([0] + [len(f.trials["trial_id"]) for f in files[:-1]])
    columns["trial_id"] = np.concatenate(
        [f.trials["trial_id"] + c for f, c in zip(files, counts, strict=True)]
    ).astype(np.int64)
    columns["split"] = columns["split"].astype(str)
    assert len(columns["trial_id"]) == n_total
    return TrialTable(columns)


def read_recording(
    paths: list[Path] | tuple[Path, ...], signals: tuple[str, ...] = ()
) -> Recording:
    """Read NWB file(s) of one session into a :class:`Recording`.

    ``signals``: TimeSeries to keep in full (e.g. ``("hand_vel",)``); the others only
    contribute to ``any_nan_ms``. Bad files raise :class:`UserError` naming the file.
    """
    if not paths:
        raise UserError("no NWB files given")
    ordered = sorted((Path(p) for p in paths), key=str)
    files = [_read_file(p) for p in ordered]
    offsets = _file_offsets(files)
    n_ms = offsets[-1] + files[-1].n_ms
    heldin = _group(files, offsets, n_ms, heldout=False)
    heldout = _group(files, offsets, n_ms, heldout=True)
    if heldin is None:
        raise UserError(f"{ordered[0]}: no held-in units (expected units with heldout=False)")
    any_nan = ~heldin.valid_ms
    if heldout is not None:
        any_nan |= ~heldout.valid_ms
    kept: dict[str, np.ndarray] = {}
    dtypes: dict[str, np.dtype] = {}
    names: list[str] = []
    for f in files:
        names += [n for n, s in f.series.items() if s is not None and n not in names]
    for name in names:
        dims = {f.series[name].data.shape[1] for f in files if f.series.get(name) is not None}
        if len(dims) != 1:
            raise UserError(f"{ordered[0]}: TimeSeries '{name}' has different widths across files")
        dim = dims.pop()
        dtype = next(f.series[name].data.dtype for f in files if f.series.get(name) is not None)
        dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        full = np.full((n_ms, dim), np.nan, dtype=dtype)
        for f, off in zip(files, offsets, strict=True):
            s = f.series.get(name)
            if s is not None:
                full[s.ms + off] = s.data
        any_nan |= np.isnan(full).any(axis=1)
        if name in signals:
            kept[name] = full
            dtypes[name] = dtype
    return Recording(
        paths=tuple(ordered),
        n_ms=n_ms,
        trials=_trial_table(files, offsets),
        heldin=heldin,
        heldout=heldout,
        signals=kept,
        signal_dtypes=dtypes,
        any_nan_ms=any_nan,
    )
