"""Bad scorer inputs: every broken submission is one clear line and exit 2, never a score.

Table-driven CLI cases for ``score`` and ``validate``, then property-based tests
(hypothesis, derandomized) for the submission rules, the NWB reader and corrupted files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlbsuite.cli import main
from nlbsuite.errors import UserError
from nlbsuite.nlb.nwb import read_recording, seconds_to_ns
from nlbsuite.nlb.tensors import bin_spikes
from nlbsuite.scoring import score_by_key
from nlbsuite.submission import validate_submission, write_submission, write_target
from nlbsuite.synthetic_targets import make_case

KEY = "mc_maze_small_20"


@pytest.fixture(scope="module")
def case() -> tuple[dict, dict]:
    """(target group, submission group) of KEY: 6 train and 4 eval trials."""
    return make_case(KEY, n_train=6, n_eval=4, seed=1)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _h5(path: Path, groups: dict[str, dict[str, np.ndarray]]) -> Path:
    """A submission written with h5py as given (any dtype, no float32 cast)."""
    with h5py.File(path, "w") as f:
        for key, arrays in groups.items():
            g = f.create_group(key)
            for name, value in arrays.items():
                g.create_dataset(name, data=value)
    return path


def _with(sub: dict, name: str, change: Callable[[np.ndarray], np.ndarray]) -> dict:
    return {**sub, name: change(np.array(sub[name]))}


def _set(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float32)
        a[0, :3, 0] = value
        return a

    return change


FWD = "eval_rates_heldin_forward"
BAD_SUBMISSIONS: dict[str, tuple[Callable[[Path, dict], Path], list[str]]] = {
    # case: (write the bad file, words the one error line must hold besides the file name)
    "all inf": (
        lambda p, s: _h5(p, {KEY: _with(s, FWD, lambda a: np.full_like(a, np.inf))}),
        [f"{KEY}/{FWD}", f"{4 * 10 * 107} infinite values"],
    ),
    "some inf": (
        lambda p, s: _h5(p, {KEY: _with(s, "eval_rates_heldout", _set(np.inf))}),
        [f"{KEY}/eval_rates_heldout", "3 infinite values"],
    ),
    "nan": (
        lambda p, s: _h5(p, {KEY: _with(s, "eval_rates_heldin", _set(np.nan))}),
        [f"{KEY}/eval_rates_heldin", "3 NaN values"],
    ),
    "negative": (
        lambda p, s: _h5(p, {KEY: _with(s, "train_rates_heldout", _set(-0.5))}),
        [f"{KEY}/train_rates_heldout", "3 negative rates"],
    ),
    "all zero": (
        lambda p, s: _h5(p, {KEY: _with(s, "eval_rates_heldout", np.zeros_like)}),
        [f"{KEY}/eval_rates_heldout", "all rates are zero"],
    ),
    "wrong shape": (
        lambda p, s: _h5(p, {KEY: _with(s, "eval_rates_heldout", lambda a: a[:, :, :30])}),
        [f"{KEY}/eval_rates_heldout", "shape (4, 35, 30)", "(4, 35, 35)"],
    ),
    "wrong trial count": (
        lambda p, s: _h5(p, {KEY: {k: v[:3] if k.startswith("eval") else v for k, v in s.items()}}),
        [f"{KEY}/eval_rates_heldin", "shape (3, 35, 107)", "(4, 35, 107)"],
    ),
    "2-d array": (
        lambda p, s: _h5(p, {KEY: _with(s, "eval_rates_heldin", lambda a: a[0])}),
        [f"{KEY}/eval_rates_heldin", "shape (35, 107)"],
    ),
    "string dtype": (
        lambda p, s: _h5(p, {KEY: _with(s, "eval_rates_heldin", lambda a: a.astype("S8"))}),
        [f"{KEY}/eval_rates_heldin", "dtype |S8"],
    ),
    "bool dtype": (
        lambda p, s: _h5(p, {KEY: _with(s, "eval_rates_heldout", lambda a: a > 0.1)}),
        [f"{KEY}/eval_rates_heldout", "dtype bool"],
    ),
    "missing key": (
        lambda p, s: _h5(p, {KEY: {k: v for k, v in s.items() if k != "train_rates_heldin"}}),
        [f"{KEY}/train_rates_heldin", "missing key"],
    ),
    "lone forward array": (
        lambda p, s: _h5(p, {KEY: {k: v for k, v in s.items() if k != FWD}}),
        [f"{KEY}/{FWD}", "missing key"],
    ),
    "key is a group": (
        lambda p, s: (
            _h5(p, {KEY: {k: v for k, v in s.items() if k != "eval_rates_heldin"}})
            and _group_inside(p)
        ),
        [f"{KEY}/eval_rates_heldin", "is a group"],
    ),
    "unknown dataset group": (
        lambda p, s: _h5(p, {"mc_mazes": s}),
        ["unknown dataset key 'mc_mazes'"],
    ),
    "empty file": (lambda p, s: _raw(p, b""), ["file is empty"]),
    "not HDF5": (lambda p, s: _raw(p, b"rates,1,2\n"), ["not an HDF5 file"]),
    "no groups": (lambda p, s: _h5(p, {}), ["no dataset groups"]),
    "top-level array": (
        lambda p, s: _array_at_top(p),
        [KEY, "not a group"],
    ),
}


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _group_inside(path: Path) -> Path:
    with h5py.File(path, "a") as f:
        f[KEY].create_group("eval_rates_heldin")
    return path


def _array_at_top(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset(KEY, data=np.ones((2, 3, 4), np.float32))
    return path


@pytest.mark.parametrize("name", sorted(BAD_SUBMISSIONS))
def test_score_and_validate_refuse_bad_submissions_in_one_line(
    name: str, case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tgt, sub = case
    write, words = BAD_SUBMISSIONS[name]
    target = write_target(tmp_path / "target.h5", {KEY: tgt})
    path = write(tmp_path / "bad.h5", sub)

    code, out, err = _run(["score", str(path), "--target", str(target)], capsys)
    assert code == 2, out
    assert out == ""  # no score printed
    assert err.count("\n") == 1 and err.startswith("nlbsuite: error: submission "), err
    assert str(path) in err
    for word in words:
        assert word in err, (word, err)

    code, out, err = _run(["validate", str(path), "--target", str(target)], capsys)
    assert code == 2 and "INVALID" in out
    first_error = next(line for line in out.splitlines() if line.startswith("error: "))
    assert all(word in first_error for word in words), (words, first_error)


def test_a_valid_submission_still_scores(case, tmp_path: Path, capsys) -> None:
    tgt, sub = case
    target = write_target(tmp_path / "target.h5", {KEY: tgt})
    path = write_submission(tmp_path / "ok.h5", {KEY: sub})
    code, out, err = _run(["score", str(path), "--target", str(target)], capsys)
    assert code == 0 and err == "" and "fp-bps" in out


# ---------------------------------------------------------------------------------------
# Property-based: random submissions (shapes, dtypes, values, keys, groups)
# ---------------------------------------------------------------------------------------

GENERATED: dict[str, int] = {}  # inputs generated per property, printed by the last test


def fixed(n: int) -> settings:
    """``n`` examples, the same on every run (CI is deterministic), no time limit each."""
    return settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


FLOATS = ["float16", "float32", "float64"]
OTHER_DTYPES = ["int8", "int32", "uint8", "bool", "S4"]


def _count(name: str) -> None:
    GENERATED[name] = GENERATED.get(name, 0) + 1


def _mutated(draw: st.DrawFn, base: dict[str, np.ndarray]) -> tuple[dict, bool]:
    """A random variant of a valid submission group and whether it must be refused."""
    arrays: dict[str, np.ndarray] = {}
    invalid = False
    changed = draw(st.lists(st.sampled_from(sorted(base)), max_size=3, unique=True))
    for name, value in base.items():
        action = "keep"
        if name in changed:
            action = draw(st.sampled_from(["drop", "dtype", "dtype", "shape", "values"]))
        if action == "drop":
            invalid |= not name.endswith("forward")  # every other array is required
            continue
        arr = np.array(value, dtype=np.float64)
        if action == "dtype":
            dtype = draw(st.sampled_from(FLOATS + OTHER_DTYPES))
            if dtype in ("bool", "S4"):
                invalid = True
                arr = arr > 1 if dtype == "bool" else arr.astype("S4")
            elif dtype in FLOATS:
                arr = arr.astype(dtype)
            else:  # integer counts >= 1: valid numbers
                arr = np.ceil(arr).astype(dtype)
        elif action == "shape":
            shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
            arr = np.full(shape, 0.5)
            invalid |= shape != value.shape
        elif action == "values":
            kind = draw(st.sampled_from(["nan", "inf", "-inf", "negative", "zeros"]))
            if kind == "zeros":
                arr[:] = 0.0
            else:
                flat = arr.reshape(-1)
                where = draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=5))
                flat[where] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}.get(kind, -0.25)
            arr = arr.astype(draw(st.sampled_from(FLOATS)))
            invalid = True
        arrays[name] = arr
    forward = [n for n in base if n.endswith("forward")]
    invalid |= sum(n in arrays for n in forward) == 1  # one forward array without the other
    if draw(st.booleans()):
        arrays["extra_key"] = np.ones(3)  # ignored with a warning
    return arrays, invalid


@st.composite
def submissions(draw: st.DrawFn, base: dict) -> tuple[dict, bool]:
    """(file layout {name: group dict or array}, must be refused)."""
    group, invalid = _mutated(draw, base)
    tree: dict = {KEY: group}
    extra = draw(st.sampled_from(["none", "none", "unknown group", "top array", "other key"]))
    if extra == "unknown group":
        tree["mc_mazes"] = {"eval_rates_heldin": np.ones((2, 3, 4))}
        invalid = True
    elif extra == "top array":
        tree["eval_rates_heldin"] = np.ones((2, 3, 4))
        invalid = True
    elif extra == "other key":  # a valid dataset the target lacks: not scored
        tree["mc_maze_20"] = {"eval_rates_heldin": np.ones((2, 3, 4))}
    return tree, invalid


def _write_tree(path: Path, tree: dict) -> Path:
    with h5py.File(path, "w") as f:
        for key, item in tree.items():
            if isinstance(item, dict):
                g = f.create_group(key)
                for name, value in item.items():
                    g.create_dataset(name, data=value)
            else:
                f.create_dataset(key, data=item)
    return path


def _scorable_errors(problems: list) -> list:
    """Errors that scoring sees: all but those of groups the target lacks (not scored)."""
    return [p for p in problems if p.severity == "error" and not p.where.startswith("mc_maze_20")]


@pytest.fixture(scope="module")
def target_file(case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tgt, _ = case
    return write_target(tmp_path_factory.mktemp("target") / "target.h5", {KEY: tgt})


@fixed(30)
@given(data=st.data())
def test_random_submissions_are_refused_in_one_line_or_score_as_float64(
    data: st.DataObject, case, target_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tree, invalid = data.draw(submissions(case[1]))
    path = _write_tree(tmp_path_factory.mktemp("sub") / "sub.h5", tree)
    errors = _scorable_errors(validate_submission(path, target_file))
    assert bool(errors) == invalid, errors
    _count("submissions refused" if invalid else "submissions scored")
    if invalid:
        with pytest.raises(UserError) as exc:
            score_by_key(target_file, path)
        message = str(exc.value)
        assert "\n" not in message and message.startswith(f"submission {path}: ")
        assert message.endswith(f"{errors[0].where}: {errors[0].message}")
        return
    got = score_by_key(target_file, path)[KEY].metrics
    as64 = {name: np.asarray(v, np.float64) for name, v in tree[KEY].items()}
    want = score_by_key({KEY: case[0]}, {KEY: as64})[KEY].metrics
    assert set(got) == {"co-bps", "vel R2", "psth R2", "fp-bps"} & set(want)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------------------------------
# Property-based: the NWB reader on random trial tables and spike trains
# ---------------------------------------------------------------------------------------


def _write_nwb(path: Path, units: list[tuple[np.ndarray, bool]], trials: list, obs: list | None):
    """A minimal NLB-layout NWB file: units (spike times in s, heldout), trials (start,
    stop, split), obs_intervals per unit ((k, 2) seconds) or none."""
    with h5py.File(path, "w") as f:
        u = f.create_group("units")
        u["id"] = np.arange(len(units), dtype=np.int64)
        times = [np.asarray(t, np.float64) for t, _ in units]
        u["spike_times"] = np.concatenate(times) if times else np.zeros(0)
        u["spike_times_index"] = np.cumsum([len(t) for t in times], dtype=np.int64)
        u["heldout"] = np.array([h for _, h in units], dtype=bool)
        if obs is not None:
            u["obs_intervals"] = np.concatenate(obs).reshape(-1, 2) if obs else np.zeros((0, 2))
            u["obs_intervals_index"] = np.cumsum([len(o) for o in obs], dtype=np.int64)
        t = f.create_group("intervals/trials")
        t["id"] = np.arange(len(trials), dtype=np.int64)
        t["start_time"] = np.array([a for a, _, _ in trials], np.float64)
        t["stop_time"] = np.array([b for _, b, _ in trials], np.float64)
        t["split"] = np.array([s.encode() for _, _, s in trials], dtype="S5")
        t.attrs["colnames"] = np.array([b"start_time", b"stop_time", b"split"])
    return path


SECONDS = st.floats(0, 1.5).map(lambda x: round(x, 4))
SPLIT = st.sampled_from(["train", "val", "test", "none"])


@st.composite
def recordings(draw: st.DrawFn) -> tuple[list, list, list | None]:
    """(units [(spike times s, heldout)], trials [(start, stop, split)], obs intervals):
    unsorted and repeated spike times, spikes outside every trial, empty spike trains,
    zero units, zero trials; now and then a negative spike time or an unknown split."""
    trains = st.lists(SECONDS, max_size=12)
    units = draw(st.lists(st.tuples(trains.map(np.array), st.booleans()), min_size=1, max_size=5))
    spans = st.tuples(SECONDS, st.floats(0, 0.4), SPLIT)
    trials = [(a, round(a + d, 4), s) for a, d, s in draw(st.lists(spans, max_size=5))]
    fault = draw(st.integers(0, 9))  # 7, 8, 9: one fault each
    if fault == 7:
        units[0] = (np.append(units[0][0], -0.002), units[0][1])  # a negative spike time
    elif fault == 8 and trials:
        trials[-1] = (*trials[-1][:2], "bogus")
    elif fault == 9:
        units = []
    obs = None
    if units and draw(st.booleans()):  # one interval per unit, the session ends at 1.6 s
        starts = draw(st.lists(st.floats(0, 0.5), min_size=len(units), max_size=len(units)))
        ends = draw(st.lists(st.floats(0.6, 1.6), min_size=len(units), max_size=len(units)))
        obs = [np.array([[round(a, 3), round(b, 3)]]) for a, b in zip(starts, ends, strict=True)]
        obs[-1][0, 1] = 1.6
    return units, trials, obs


@fixed(60)
@given(case=recordings())
def test_nwb_reader_gives_a_clear_error_or_counts_equal_to_a_histogram(
    case: tuple, tmp_path_factory: pytest.TempPathFactory
) -> None:
    units, trials, obs = case
    path = _write_nwb(tmp_path_factory.mktemp("nwb") / "rec.nwb", units, trials, obs)
    try:
        rec = read_recording([path])
    except UserError as exc:
        _count(f"nwb refused: {str(exc).split(': ', 1)[1][:90]}")
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    _count("nwb read")
    assert len(rec.trials) == len(trials)
    np.testing.assert_array_equal(
        rec.trials["start_time"], seconds_to_ns(np.array([a for a, _, _ in trials]))
    )
    for heldout, group in ((False, rec.heldin), (True, rec.heldout)):
        members = [i for i, (_, h) in enumerate(units) if h == heldout]
        if not members:
            assert group is None
            continue
        valid = np.ones(rec.n_ms, bool)
        if obs is not None:  # the group's first unit's observation intervals
            ((a, b),) = obs[members[0]]
            grid = np.arange(rec.n_ms)
            valid = (grid >= np.ceil(round(a * 1000, 6))) & (grid < np.floor(round(b * 1000, 6)))
        np.testing.assert_array_equal(group.valid_ms, valid)
        bin_ms = 5
        n_bins = -(-rec.n_ms // bin_ms)
        counts = bin_spikes(group, bin_ms, n_bins)
        for col, u in enumerate(members):  # brute force: every spike, one at a time
            ms = [int(np.round(t * 1000, 6)) for t in units[u][0]]
            assert all(0 <= m < rec.n_ms for m in ms)
            kept = [m for m in ms if valid[m]]
            want = np.histogram(kept, bins=np.arange(n_bins + 1) * bin_ms)[0]
            np.testing.assert_array_equal(counts[col], want)


def test_nwb_unsorted_spike_train_sets_the_grid_by_its_latest_spike(tmp_path: Path) -> None:
    """Without obs_intervals the grid ended at each unit's last listed spike, so an unsorted
    train was refused as 'spike times outside the recorded interval'."""
    units = [(np.array([0.9, 0.1, 0.5]), False), (np.array([0.2]), True)]
    rec = read_recording([_write_nwb(tmp_path / "r.nwb", units, [(0.0, 0.3, "train")], None)])
    assert rec.n_ms == 901
    np.testing.assert_array_equal(rec.heldin.unit_spikes(0), [100, 500, 900])


def test_nwb_without_units_says_so(tmp_path: Path) -> None:
    """An empty units table was reported as a corrupt file (a zip() length error)."""
    path = _write_nwb(tmp_path / "r.nwb", [], [(0.0, 0.3, "train")], [])
    with pytest.raises(UserError, match=f"^{path}: no held-in units"):
        read_recording([path])


# ---------------------------------------------------------------------------------------
# Property-based: truncated and byte-flipped submission and NWB files
# ---------------------------------------------------------------------------------------


@st.composite
def damage(draw: st.DrawFn, size: int) -> tuple[int | None, list[tuple[int, int]]]:
    """(truncate at this byte or None, [(offset, xor mask)] byte flips)."""
    cut = draw(st.none() | st.integers(0, size - 1))
    flips = draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(1, 255)), max_size=8))
    return cut, [] if cut is not None and draw(st.booleans()) else flips


def _damaged(data: bytes, cut: int | None, flips: list[tuple[int, int]], path: Path) -> Path:
    raw = bytearray(data if cut is None else data[:cut])
    for at, mask in flips:
        if at < len(raw):
            raw[at] ^= mask
    path.write_bytes(bytes(raw))
    return path


@pytest.fixture(scope="module")
def good_submission(case, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_submission(tmp_path_factory.mktemp("good") / "s.h5", {KEY: case[1]})


@fixed(25)
@given(data=st.data())
def test_damaged_submissions_score_or_fail_in_one_line_naming_the_file(
    data: st.DataObject,
    good_submission: Path,
    target_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = good_submission.read_bytes()
    cut, flips = data.draw(damage(len(raw)))
    path = _damaged(raw, cut, flips, tmp_path_factory.mktemp("bad") / "s.h5")
    validate_submission(path, target_file)  # lists problems, never raises
    try:
        score_by_key(target_file, path)
        _count("damaged submissions scored")  # flips in data bytes: still a valid file
    except UserError as exc:
        _count("damaged submissions refused")
        assert "\n" not in str(exc) and str(exc).startswith(f"submission {path}")
    code, _, err = _run(["score", str(path), "--target", str(target_file)], capsys)
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1 and str(path) in err, err


@pytest.fixture(scope="module")
def good_nwb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    units = [(np.array([0.01, 0.2, 0.35]), False), (np.array([0.1, 0.4]), True)]
    trials = [(0.0, 0.2, "train"), (0.25, 0.45, "val")]
    return _write_nwb(tmp_path_factory.mktemp("nwb") / "r.nwb", units, trials, None)


@fixed(40)
@given(data=st.data())
def test_damaged_nwb_files_read_or_fail_in_one_line_naming_the_file(
    data: st.DataObject, good_nwb: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    raw = good_nwb.read_bytes()
    cut, flips = data.draw(damage(len(raw)))
    path = _damaged(raw, cut, flips, tmp_path_factory.mktemp("bad") / "r.nwb")
    try:
        read_recording([path])
        _count("damaged NWB files read")
    except UserError as exc:
        _count("damaged NWB files refused")
        assert "\n" not in str(exc) and str(exc).startswith(str(path))


def test_zz_report_generated_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints how many inputs the properties above generated (run with -s to see it)."""
    with capsys.disabled():
        print(f"\ngenerated inputs: {GENERATED} (total {sum(GENERATED.values())})")
