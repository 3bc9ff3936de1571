"""Synthetic NLB-format NWB sessions with known firing rates, for the four NLB layouts.

Each session is a DANDI-style pair of files written through pynwb: a ``desc-train`` file
(train / val / none trials, all units with the ``heldout`` column, behaviour TimeSeries
under ``processing/behavior``) and a ``desc-test`` file (test trials, held-in units only,
no behaviour), as in the NLB dandisets. Both load in nlb_tools unchanged.

Layouts (``layout`` argument):

- ``mc_maze``: delayed reaches; conditions ``trial_type`` x ``trial_version``; hand
  position/velocity, cursor and eye position; per-trial observation intervals (the data
  between trials is missing, as in DANDI 000128).
- ``mc_rtt``: continuous self-paced reaching cut into back-to-back 600 ms trials in a few
  recorded blocks; finger position/velocity, cursor and target position.
- ``area2_bump``: centre-out reaches, half with a bump during centre hold; conditions
  ``cond_dir`` x ``ctr_hold_bump``; hand position/velocity and forces.
- ``dmfc_rsg``: ready-set-go interval reproduction; ``ts``/``tp`` in ms, ``is_eye``,
  ``theta``, ``is_short``, ``is_outlier``; no behaviour TimeSeries.

Ground truth: the rate of unit ``n`` at 1 ms sample ``t`` (expected spikes in that ms) is
``exp(bias[n] + 1.5 * tanh(latents[t] @ loading[:, n] / 1.5)) / 1000`` (:func:`rate_per_ms`:
baseline 8-30 Hz, modulated at most 4.5-fold either way); ``latents`` (n_ms, dim),
``loading`` and ``bias`` are stored in the file's ``scratch`` (ignored by nlb_tools) and
read back by :func:`read_truth`.
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from nlbsuite.catalog import official_cards
from nlbsuite.fileio import atomic_path

# The NWB layouts of NLB's datasets (the scaling datasets share MC_Maze's) and their subjects.
_SUBJECT = {c.layout: c.subject for c in official_cards() if c.layout is not None}
LAYOUTS = tuple(_SUBJECT)


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and seed of a synthetic session."""

    layout: str = "mc_maze"
    n_trials: int = 40  # train + val + test (+ a few 'none')
    n_neurons: int = 24  # held-in + held-out
    heldout_fraction: float = 0.25
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    n_latents: int = 3
    n_conditions: int = 6  # mc_maze: trial_type x 3 trial_versions
    seed: int = 0
    truth: bool = True


@dataclass
class _Trials:
    columns: dict[str, np.ndarray]
    obs: list[tuple[float, float]]  # recorded intervals (s)
    n_ms: int


# ----------------------------------------------------------------------------------------
# Trial structure per layout
# ----------------------------------------------------------------------------------------


def _splits(rng: np.random.Generator, n: int, spec: SyntheticSpec) -> np.ndarray:
    n_test = max(1, round(n * spec.test_fraction))
    n_val = max(1, round(n * spec.val_fraction))
    split = np.array(["train"] * n, dtype=object)
    order = rng.permutation(n)
    split[order[:n_test]] = "test"
    split[order[n_test : n_test + n_val]] = "val"
    if n >= 20:
        split[order[n_test + n_val]] = "none"
    return split


def _maze_trials(rng: np.random.Generator, spec: SyntheticSpec) -> _Trials:
    n = spec.n_trials
    t = 0.3
    cols: dict[str, list] = {
        k: []
        for k in (
            "start_time",
            "stop_time",
            "target_on_time",
            "go_cue_time",
            "move_onset_time",
            "trial_type",
            "trial_version",
            "maze_id",
        )
    }
    obs = []
    n_types = max(1, spec.n_conditions // 3)
    for _ in range(n):
        start = round(t, 3)
        target = round(start + 0.05, 3)
        go = round(target + rng.uniform(0.1, 0.2), 3)
        move = round(go + rng.uniform(0.15, 0.25), 4)  # off the 1 ms grid, as computed onsets are
        stop = round(move + rng.uniform(0.7, 0.8), 3)
        ttype = int(rng.integers(1, n_types + 1))
        version = int(rng.integers(0, 3))
        row = (start, stop, target, go, move, ttype, version, ttype * 3 + version)
        for k, v in zip(cols, row, strict=True):
            cols[k].append(v)
        obs.append((start, stop))
        t = stop + rng.uniform(0.02, 0.12)
    n_ms = round(obs[-1][1] * 1000)  # the grid ends with the last observation interval
    return _Trials({k: np.array(v) for k, v in cols.items()}, obs, n_ms)


def _rtt_trials(rng: np.random.Generator, spec: SyntheticSpec) -> _Trials:
    n = spec.n_trials
    blocks = 2 if n >= 8 else 1
    per_block = [n // blocks + (1 if b < n % blocks else 0) for b in range(blocks)]
    starts, obs = [], []
    t = 0.0
    for size in per_block:
        block_start = t
        for k in range(size):
            starts.append(round(block_start + 0.6 * k, 3))
        block_end = block_start + 0.6 * size + 1.0
        obs.append((round(block_start, 3), round(block_end, 3)))
        t = block_end + 2.0
    start = np.array(starts)
    return _Trials(
        {"start_time": start, "stop_time": np.round(start + 0.6, 3)},
        obs,
        round(obs[-1][1] * 1000),
    )


def _area2_trials(rng: np.random.Generator, spec: SyntheticSpec) -> _Trials:
    n = spec.n_trials
    t = 0.5
    cols: dict[str, list] = {
        k: []
        for k in (
            "start_time",
            "stop_time",
            "go_cue_time",
            "move_onset_time",
            "cond_dir",
            "ctr_hold_bump",
            "bump_dir",
            "result",
        )
    }
    for _ in range(n):
        start = round(t, 3)
        bump = bool(rng.random() < 0.5)
        direction = float(rng.integers(0, 8) * 45.0)
        go = round(start + rng.uniform(0.4, 0.6), 3)
        move = (
            round(go + rng.uniform(0.15, 0.3), 3)
            if not bump
            else round(start + rng.uniform(0.3, 0.5), 3)
        )
        stop = round(max(go, move) + rng.uniform(0.8, 1.0), 3)
        for k, v in zip(
            cols,
            (start, stop, go, move, direction, bump, direction if bump else np.nan, "R"),
            strict=True,
        ):
            cols[k].append(v)
        t = stop + rng.uniform(0.1, 0.4)
    n_ms = round((t + 0.5) * 1000)
    return _Trials({k: np.array(v) for k, v in cols.items()}, [(0.0, n_ms / 1000)], n_ms)


def _dmfc_trials(rng: np.random.Generator, spec: SyntheticSpec) -> _Trials:
    n = spec.n_trials
    t = 1.9
    cols: dict[str, list] = {
        k: []
        for k in (
            "start_time",
            "stop_time",
            "ready_time",
            "set_time",
            "go_time",
            "is_eye",
            "theta",
            "is_short",
            "ts",
            "tp",
            "is_outlier",
            "iti",
        )
    }
    for _ in range(n):
        short = bool(rng.random() < 0.5)
        ts = float(rng.choice([480, 640, 800]) if short else rng.choice([800, 1000, 1200]))
        tp = float(np.round(ts * rng.uniform(0.85, 1.25)))
        outlier = bool(rng.random() < 0.1)
        if outlier:
            tp = float(np.round(ts * rng.uniform(1.5, 1.8)))
        ready = round(t, 3)
        set_ = round(ready + ts / 1000, 3)
        go = round(set_ + tp / 1000, 3)
        start = round(ready - 0.4, 3)
        stop = round(go + 0.5, 3)
        row = (
            start,
            stop,
            ready,
            set_,
            go,
            bool(rng.random() < 0.5),
            float(rng.choice([0.0, 180.0])),
            short,
            ts,
            tp,
            outlier,
            500.0 if short else 1220.0,
        )
        for k, v in zip(cols, row, strict=True):
            cols[k].append(v)
        t = stop + rng.uniform(0.3, 0.8)
    n_ms = round((t + 0.5) * 1000)
    return _Trials({k: np.array(v) for k, v in cols.items()}, [(0.0, n_ms / 1000)], n_ms)


_TRIALS = {
    "mc_maze": _maze_trials,
    "mc_rtt": _rtt_trials,
    "area2_bump": _area2_trials,
    "dmfc_rsg": _dmfc_trials,
}


# ----------------------------------------------------------------------------------------
# Latents, rates and spikes
# ----------------------------------------------------------------------------------------


def _latents(rng: np.random.Generator, layout: str, trials: _Trials, dim: int) -> np.ndarray:
    """(n_ms, dim) latent trajectories: condition-locked bumps in trials, slow drift in RTT."""
    n_ms = trials.n_ms
    z = np.zeros((n_ms, dim), dtype=np.float32)
    t = np.arange(n_ms) / 1000.0
    if layout == "mc_rtt":
        for d in range(dim):
            freqs = rng.uniform(0.3, 2.0, 3)
            phases = rng.uniform(0, 2 * np.pi, 3)
            z[:, d] = (
                0.6
                * np.sum(np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None]), axis=0)
                / 3
            )
        return z
    cols = trials.columns
    if layout == "mc_maze":
        key = cols["trial_type"] * 3 + cols["trial_version"]
        align = cols["move_onset_time"]
    elif layout == "area2_bump":
        key = cols["cond_dir"] / 45 + 8 * cols["ctr_hold_bump"]
        align = cols["move_onset_time"]
    else:
        key = cols["ts"] / 10 + 1000 * cols["is_eye"]
        align = cols["set_time"]
    patterns = {}
    for k in np.unique(key):
        patterns[k] = (
            rng.normal(0, 1.0, (3, dim)),
            rng.uniform(-0.2, 0.5, 3),
            rng.uniform(0.08, 0.2, 3),
        )
    for i in range(len(key)):
        amps, centers, widths = patterns[key[i]]
        a = round(cols["start_time"][i] * 1000)
        b = min(round(cols["stop_time"][i] * 1000), n_ms)
        rel = (np.arange(a, b) / 1000.0 - align[i])[:, None]
        bumps = np.exp(-0.5 * ((rel - centers[None, :]) / widths[None, :]) ** 2)  # (T, 3)
        z[a:b] += (bumps @ amps).astype(np.float32)
    return z


MAX_LOG_GAIN = 1.5


def rate_per_ms(latents: np.ndarray, loading: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Expected spikes per 1 ms sample, (..., units), from (..., dim) latents."""
    drive = latents @ loading
    return np.exp(bias + MAX_LOG_GAIN * np.tanh(drive / MAX_LOG_GAIN)) / 1000.0


def _spikes(
    rng: np.random.Generator,
    latents: np.ndarray,
    loading: np.ndarray,
    bias: np.ndarray,
    recorded: np.ndarray,
) -> list[np.ndarray]:
    """Poisson spike times (s) per unit, in recorded ms only; chunked over time."""
    n_ms, n_units = latents.shape[0], loading.shape[1]
    parts: list[list[np.ndarray]] = [[] for _ in range(n_units)]
    chunk = max(1000, 2_000_000 // n_units)
    for a in range(0, n_ms, chunk):
        b = min(a + chunk, n_ms)
        rate = rate_per_ms(latents[a:b], loading, bias)
        rate[~recorded[a:b]] = 0.0
        counts = rng.poisson(rate)
        ms, unit = np.nonzero(counts)
        reps = counts[ms, unit]
        ms, unit = np.repeat(ms, reps) + a, np.repeat(unit, reps)
        times = np.round((ms + rng.uniform(0.0, 0.999, len(ms))) / 1000.0, 6)
        order = np.lexsort((times, unit))
        times, unit = times[order], unit[order]
        bounds = np.searchsorted(unit, np.arange(n_units + 1))
        for u in range(n_units):
            parts[u].append(times[bounds[u] : bounds[u + 1]])
    return [np.sort(np.concatenate(p)) for p in parts]


def _behaviour(
    rng: np.random.Generator, layout: str, latents: np.ndarray, trials: _Trials
) -> dict[str, tuple[np.ndarray, str]]:
    """TimeSeries name -> ((n_ms, dim) data, kind) at 1 ms; kind 'spatial' or 'plain'."""
    n_ms = latents.shape[0]
    mix = rng.normal(0, 40.0, (latents.shape[1], 2))
    vel = (latents @ mix).astype(np.float64)
    pos = np.cumsum(vel, axis=0) / 1000.0
    if layout == "mc_maze":
        eye = pos + rng.normal(0, 1.0, pos.shape)
        eye[:100] = np.nan  # eye tracker not yet on at the start (before the first trial)
        vel_out = vel.copy()
        vel_out[:20] = np.nan
        return {
            "hand_vel": (vel_out, "plain"),
            "hand_pos": (pos, "spatial"),
            "cursor_pos": (pos * 0.9, "spatial"),
            "eye_pos": (eye, "spatial"),
        }
    if layout == "mc_rtt":
        finger = np.column_stack([pos, np.full(n_ms, 10.0) + 0.1 * pos[:, 0]])
        recorded = np.zeros(n_ms, bool)
        for a, b in trials.obs:
            recorded[round(a * 1000) : round(b * 1000)] = True
        target = np.repeat(rng.uniform(-50, 50, (n_ms // 700 + 1, 2)), 700, axis=0)[:n_ms]
        out = {
            "finger_vel": (vel, "plain"),
            "finger_pos": (finger, "spatial"),
            "cursor_pos": (pos.copy(), "spatial"),
            "target_pos": (target, "spatial"),
        }
        for data, _ in out.values():
            data[~recorded] = np.nan  # nothing is tracked between recorded blocks
        return out
    if layout == "area2_bump":
        force = np.column_stack([vel * 0.01, rng.normal(0, 0.1, (n_ms, 4))])
        return {"hand_vel": (vel, "plain"), "hand_pos": (pos, "spatial"), "force": (force, "plain")}
    return {}


# ----------------------------------------------------------------------------------------
# NWB writing
# ----------------------------------------------------------------------------------------


def _select(
    columns: dict[str, np.ndarray], rows: np.ndarray, keep: tuple[str, ...] | None
) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in columns.items() if keep is None or k in keep}


def _write_nwb(
    path: Path,
    layout: str,
    desc: str,
    trials: dict[str, np.ndarray],
    units: list[np.ndarray],
    unit_ids: np.ndarray,
    heldout: np.ndarray,
    obs: list[tuple[float, float]],
    series: dict[str, tuple[np.ndarray, str]],
    truth: dict[str, np.ndarray] | None,
) -> None:
    from hdmf.common import VectorData, VectorIndex
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import SpatialSeries
    from pynwb.core import ScratchData
    from pynwb.misc import Units

    start = datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC)
    nwb = NWBFile(
        session_description=f"nlbsuite synthetic {layout} session ({desc} file)",
        identifier=f"nlbsuite-synthetic-{layout}-{desc}",
        session_start_time=start,
        timestamps_reference_time=start,
        session_id="synthetic",
        keywords=["Neural Latents Benchmark", "synthetic"],
    )
    n = len(trials["start_time"])
    extra = [k for k in trials if k not in ("start_time", "stop_time")]
    for name in extra:
        nwb.add_trial_column(name=name, description=f"synthetic {name}")
    lists = {k: v.tolist() for k, v in trials.items()}
    for i in range(n):
        nwb.add_trial(**{k: lists[k][i] for k in trials})

    # units table from whole columns (add_unit per unit converts every spike in Python)
    lengths = np.array([len(t) for t in units], dtype=np.int64)
    spike_times = VectorData(
        name="spike_times",
        description="the spike times for each unit",
        data=(np.concatenate(units) if len(units) else np.zeros(0)).astype(np.float64),
    )
    obs_arr = np.asarray(obs, dtype=np.float64).reshape(-1, 2)
    obs_intervals = VectorData(
        name="obs_intervals",
        description="the observation intervals for each unit",
        data=np.tile(obs_arr, (len(units), 1)),
    )
    table = Units(
        name="units",
        description="data on spiking units",
        id=[int(u) for u in unit_ids],
        columns=[
            VectorData(
                name="heldout",
                description="Whether the unit is held out in the test data (True) or not (False)",
                data=np.asarray(heldout, dtype=bool),
            ),
            spike_times,
            VectorIndex(name="spike_times_index", data=np.cumsum(lengths), target=spike_times),
            obs_intervals,
            VectorIndex(
                name="obs_intervals_index",
                data=np.arange(1, len(units) + 1) * len(obs_arr),
                target=obs_intervals,
            ),
        ],
    )
    nwb.units = table

    if series:
        module = nwb.create_processing_module("behavior", "Processed behavioral data")
        for i, (name, (data, kind)) in enumerate(series.items()):
            kwargs = (
                {"timestamps": np.arange(len(data)) / 1000.0}
                if i % 2 == 0
                else {"rate": 1000.0, "starting_time": 0.0}
            )
            if kind == "spatial":
                module.add(
                    SpatialSeries(
                        name=name, data=data, reference_frame="origin", description=name, **kwargs
                    )
                )
            else:
                module.add(
                    TimeSeries(name=name, data=data, unit="a.u.", description=name, **kwargs)
                )
    if truth is not None:
        for name, arr in truth.items():
            nwb.add_scratch(
                ScratchData(
                    name=f"truth_{name}", data=arr, description=f"synthetic ground truth {name}"
                )
            )
    # the temporary name is hidden (leading dot) from nlb_tools' *.nwb glob
    with atomic_path(path, suffix=".tmp.nwb") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)


def write_synthetic(
    out_dir: str | Path, spec: SyntheticSpec | None = None, **overrides
) -> list[Path]:
    """Write a synthetic session (train + test NWB) under ``out_dir``; returns both paths.

    ``overrides`` set :class:`SyntheticSpec` fields (``layout="dmfc_rsg"``, ``n_trials=...``).
    """
    import dataclasses

    spec = dataclasses.replace(spec or SyntheticSpec(), **overrides)
    if spec.layout not in LAYOUTS:
        from nlbsuite.errors import UserError

        raise UserError(f"layout '{spec.layout}': expected one of {', '.join(LAYOUTS)}")
    rng = np.random.default_rng(spec.seed)
    tr = _TRIALS[spec.layout](rng, spec)
    split = _splits(rng, len(tr.columns["start_time"]), spec)
    tr.columns["split"] = split
    n_units = spec.n_neurons
    unit_ids = np.sort(rng.choice(np.arange(1000, 1000 + 20 * n_units), n_units, replace=False))
    n_held = max(1, round(n_units * spec.heldout_fraction))
    heldout = np.zeros(n_units, bool)
    heldout[rng.choice(n_units, n_held, replace=False)] = True
    latents = _latents(rng, spec.layout, tr, spec.n_latents)
    loading = rng.normal(0, 0.6, (spec.n_latents, n_units)).astype(np.float32)
    bias = np.log(rng.uniform(8.0, 30.0, n_units)).astype(np.float32)
    recorded = np.zeros(tr.n_ms, dtype=bool)
    for a, b in tr.obs:
        recorded[int(np.ceil(round(a * 1000, 6))) : int(np.floor(round(b * 1000, 6)))] = True
    spikes = _spikes(rng, latents, loading, bias, recorded)
    series = _behaviour(rng, spec.layout, latents, tr)

    subject = _SUBJECT[spec.layout]
    base = Path(out_dir) / f"sub-{subject}"
    is_test = split == "test"
    train_rows = np.flatnonzero(~is_test)
    test_rows = np.flatnonzero(is_test)

    # train file: every trial except test; test file: test trials re-timed back to back
    train_path = base / f"sub-{subject}_ses-synthetic_desc-train_behavior+ecephys.nwb"
    truth = {"latents": latents, "loading": loading, "bias": bias} if spec.truth else None
    _write_nwb(
        train_path,
        spec.layout,
        "train",
        _select(tr.columns, train_rows, None),
        spikes,
        unit_ids,
        heldout,
        tr.obs,
        series,
        truth,
    )

    test_cols = _test_trials(spec.layout, tr.columns, test_rows)
    test_path = base / f"sub-{subject}_ses-synthetic_desc-test_ecephys.nwb"
    test_spikes, test_obs, test_latents, test_n_ms = _cut_test(tr, test_rows, spikes, latents)
    test_truth = (
        {"latents": test_latents, "loading": loading[:, ~heldout], "bias": bias[~heldout]}
        if spec.truth
        else None
    )
    _write_nwb(
        test_path,
        spec.layout,
        "test",
        test_cols,
        [s for s, h in zip(test_spikes, heldout, strict=True) if not h],
        unit_ids[~heldout],
        np.zeros((~heldout).sum(), bool),
        test_obs,
        {},
        test_truth,
    )
    del test_n_ms
    return [train_path, test_path]


_TEST_COLUMNS = {
    "mc_maze": ("start_time", "stop_time", "move_onset_time", "split"),
    "mc_rtt": ("start_time", "stop_time", "split"),
    "area2_bump": ("start_time", "stop_time", "move_onset_time", "split"),
    "dmfc_rsg": ("start_time", "stop_time", "go_time", "split"),
}


def _test_span(layout: str, cols: dict[str, np.ndarray], row: int) -> tuple[float, float]:
    """The stretch of a test trial copied to the test file (windows and forward window)."""
    if layout == "dmfc_rsg":
        return cols["go_time"][row] - 1.6, cols["go_time"][row] + 0.1
    return cols["start_time"][row], cols["stop_time"][row]


def _cut_test(tr: _Trials, rows: np.ndarray, spikes: list[np.ndarray], latents: np.ndarray):
    """Spikes, obs intervals and latents of the test file: test trials laid back to back."""
    layout_cols = tr.columns
    pieces, obs, t = [], [], 0.0
    for row in rows:
        a, b = _test_span(_layout_of(layout_cols), layout_cols, row)
        a, b = round(a, 3), round(b, 3)
        pieces.append((a, b, round(t, 3)))
        obs.append((round(t, 3), round(t + b - a, 3)))
        t = round(t + b - a + 0.1, 3)
    n_ms = round(t * 1000)
    starts = np.array([p[0] for p in pieces])
    ends = np.array([p[1] for p in pieces])
    shift = np.array([p[2] - p[0] for p in pieces])
    out_spikes = []
    for times in spikes:  # sorted: each piece is one slice
        lo, hi = np.searchsorted(times, starts, "left"), np.searchsorted(times, ends, "left")
        counts = hi - lo
        idx = np.arange(counts.sum()) + np.repeat(lo - np.cumsum(counts) + counts, counts)
        out_spikes.append(np.sort(np.round(times[idx] + np.repeat(shift, counts), 6)))
    lat = np.zeros((n_ms, latents.shape[1]), dtype=np.float32)
    for a, b, dst in pieces:
        ia, ib, id0 = round(a * 1000), round(b * 1000), round(dst * 1000)
        lat[id0 : id0 + (ib - ia)] = latents[ia:ib]
    return out_spikes, obs, lat, n_ms


def _layout_of(cols: dict[str, np.ndarray]) -> str:
    if "go_time" in cols:
        return "dmfc_rsg"
    if "cond_dir" in cols:
        return "area2_bump"
    if "move_onset_time" in cols:
        return "mc_maze"
    return "mc_rtt"


def _test_trials(
    layout: str, cols: dict[str, np.ndarray], rows: np.ndarray
) -> dict[str, np.ndarray]:
    """Trial table of the test file: the test trials' kept columns, shifted like the spikes."""
    out = {k: cols[k][rows].copy() for k in _TEST_COLUMNS[layout]}
    t = 0.0
    for i, row in enumerate(rows):
        a, b = _test_span(layout, cols, row)
        a, b = round(a, 3), round(b, 3)
        shift = round(t, 3) - a
        for k in out:
            if k.endswith("_time"):
                out[k][i] = round(cols[k][row] + shift, 4)
        t = round(t + b - a + 0.1, 3)
    return out


def read_truth(path: str | Path) -> dict[str, np.ndarray] | None:
    """The ground truth stored by :func:`write_synthetic` in one file, or None."""
    with h5py.File(path, "r") as f:
        if "scratch/truth_latents" not in f:
            return None
        return {k: f[f"scratch/truth_{k}"][()] for k in ("latents", "loading", "bias")}
