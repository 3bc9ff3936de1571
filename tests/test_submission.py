"""Submission files (write / read / validate) and the score, validate and submit commands."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nlbsuite.commands import score as score_cmd
from nlbsuite.commands import submit as submit_cmd
from nlbsuite.commands import validate as validate_cmd
from nlbsuite.errors import UserError
from nlbsuite.scoring import evaluate, score_by_key
from nlbsuite.submission import (
    read_submission,
    target_group,
    validate_submission,
    write_submission,
    write_target,
)
from nlbsuite.synthetic_targets import make_case

KEY = "mc_maze_small_20"


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run one of this module's commands as the nlbsuite CLI does (UserError -> exit 2)."""
    parser = argparse.ArgumentParser(prog="nlbsuite")
    sub = parser.add_subparsers()
    for module in (score_cmd, validate_cmd, submit_cmd):
        module.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except UserError as exc:
        print(f"nlbsuite: error: {exc}", file=sys.stderr)
        code = 2
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def case() -> tuple[dict, dict]:
    return make_case(KEY, n_train=12, n_eval=8, seed=0)


@pytest.fixture
def files(tmp_path: Path, case) -> tuple[Path, Path]:
    """(submission file, target file) for KEY."""
    tgt, sub = case
    return (write_submission(tmp_path / "sub.h5", {KEY: sub}),
            write_target(tmp_path / "target.h5", {KEY: tgt}))  # fmt: skip


# ---------------------------------------------------------------------------------------
# Writing and reading
# ---------------------------------------------------------------------------------------


def test_write_read_roundtrip_float32_and_several_datasets(tmp_path: Path) -> None:
    _, maze = make_case("mc_maze_20", n_train=5, n_eval=3)
    _, dmfc = make_case("dmfc_rsg", n_train=5, n_eval=3)
    maze64 = {k: v.astype(np.float64) for k, v in maze.items()}
    dmfc["train_rates_heldin"] = np.ones((5, 300, 45))  # DMFC_RSG: never written
    path = write_submission(tmp_path / "s.h5", {"mc_maze_20": maze64})
    write_submission(path, {"dmfc_rsg": dmfc}, merge=True)
    back = read_submission(path)
    assert sorted(back) == ["dmfc_rsg", "mc_maze_20"]
    assert sorted(back["mc_maze_20"]) == sorted(maze)
    assert all(v.dtype == np.float32 for g in back.values() for v in g.values())
    np.testing.assert_array_equal(back["mc_maze_20"]["eval_rates_heldout"],
                                  maze["eval_rates_heldout"])  # fmt: skip
    assert "train_rates_heldin" not in back["dmfc_rsg"]
    assert maze64["eval_rates_heldin"].dtype == np.float64  # caller's arrays untouched
    write_submission(path, {"mc_maze_20": maze})  # no merge: the file is replaced
    assert list(read_submission(path)) == ["mc_maze_20"]


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path, case) -> None:
    _, sub = case
    path = write_submission(tmp_path / "s.h5", {KEY: sub})
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_submission(path, {KEY: sub}, compression="no-such-filter")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def test_write_submission_rejects_unknown_dataset_key(tmp_path: Path, case) -> None:
    with pytest.raises(UserError, match="unknown dataset key 'maze'"):
        write_submission(tmp_path / "s.h5", {"maze": case[1]})
    assert not (tmp_path / "s.h5").exists()


def test_target_file_scores_like_the_in_memory_evaluation(tmp_path: Path, tiny_lorenz) -> None:
    truth = tiny_lorenz.truth.as_rates()
    tpath = write_target(tmp_path / "t.h5", {tiny_lorenz.key: target_group(tiny_lorenz)})
    spath = write_submission(tmp_path / "s.h5", {tiny_lorenz.key: truth})
    with h5py.File(tpath) as f:  # nlb_tools layout: condition indices as vlen int32
        assert h5py.check_vlen_dtype(f[tiny_lorenz.key]["eval_cond_idx"].dtype) == np.int32
    from_files = score_by_key(tpath, spath)[tiny_lorenz.key].metrics
    in_memory = evaluate(tiny_lorenz, truth)
    for name, value in from_files.items():  # submissions are float32
        assert value == pytest.approx(in_memory[name], abs=1e-5)


# ---------------------------------------------------------------------------------------
# Validation: every bad case listed, with the key and the expected shape
# ---------------------------------------------------------------------------------------


def test_valid_submission_has_no_problems(files) -> None:
    sub, tgt = files
    assert validate_submission(sub) == []
    assert validate_submission(sub, tgt) == []


def _set(name: str, fn):
    return lambda g: g.__setitem__(name, fn(g[name]))


BAD = [
    ("missing", lambda g: g.pop("eval_rates_heldout"),
     r"eval_rates_heldout: missing key; expected shape \(n, 35, 35\)"),
    ("neurons", _set("eval_rates_heldin", lambda a: a[:, :, :100]),
     r"eval_rates_heldin: shape \(8, 35, 100\); expected \(n, 35, 107\)"),
    ("bins", _set("train_rates_heldout", lambda a: a[:, :30]),
     r"train_rates_heldout: shape \(12, 30, 35\); expected \(n, 35, 35\)"),
    ("nan", _set("eval_rates_heldout", lambda a: np.where(a > 0.5, np.nan, a)), r"NaN values"),
    ("inf", _set("eval_rates_heldin", lambda a: np.where(a > 0.5, np.inf, a)), "infinite"),
    ("negative", _set("train_rates_heldin", lambda a: -a), r"negative rates \(min -"),
    ("zeros", _set("eval_rates_heldin_forward", np.zeros_like), "all rates are zero"),
    ("string", _set("eval_rates_heldout", lambda a: np.full(a.shape, b"x")),
     r"eval_rates_heldout: dtype \|S1; expected float32"),
    ("mismatch", _set("eval_rates_heldout", lambda a: a[:7]),
     r"eval_rates_heldout: shape \(7, 35, 35\) does not match eval_rates_heldin"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_validate_catches_bad_arrays(tmp_path: Path, case, name, change, message) -> None:
    _, sub = case
    sub = dict(sub)
    change(sub)
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:  # written raw: write_submission would cast to float32
        g = f.create_group(KEY)
        for k, v in sub.items():
            g.create_dataset(k, data=v)
    errors = [str(p) for p in validate_submission(path) if p.severity == "error"]
    assert any(re.search(message, e) for e in errors), errors
    assert all(e.startswith(f"error: {KEY}/") for e in errors)


def test_validate_checks_trial_counts_against_the_target(tmp_path: Path, case) -> None:
    tgt, sub = case
    short = {k: v[:6] if k.startswith("eval") else v for k, v in sub.items()}
    problems = validate_submission({KEY: short}, {KEY: tgt})
    expected = f"error: {KEY}/eval_rates_heldin: shape (6, 35, 107); expected (8, 35, 107) "
    assert any(str(p).startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"definitely not hdf5", "not an HDF5 file"),
    ],
)
def test_validate_reports_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "s.h5"
    path.write_bytes(content)
    (problem,) = validate_submission(path)
    assert problem.severity == "error" and message in problem.message and str(path) in str(problem)


def test_validate_reports_unknown_keys_and_non_groups(tmp_path: Path, case) -> None:
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_group("mc_mazes")
        f.create_dataset("eval_rates_heldin", data=np.ones(3))
    found = [str(p) for p in validate_submission(path)]
    assert any("unknown dataset key 'mc_mazes'" in p for p in found)
    assert any(
        p.startswith("error: eval_rates_heldin: top-level item is not a group") for p in found
    )
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    (problem,) = validate_submission(tmp_path / "empty.h5")
    assert "no dataset groups" in problem.message


def test_validate_warns_about_dmfc_train_rates_and_missing_forward(tmp_path: Path) -> None:
    _, sub = make_case("dmfc_rsg_20", n_train=4, n_eval=3)
    sub = {k: v for k, v in sub.items() if "forward" not in k}
    sub["train_rates_heldin"] = np.ones((4, 75, 45), dtype=np.float32)
    problems = validate_submission({"dmfc_rsg_20": sub})
    assert {p.severity for p in problems} == {"warning"}
    text = " | ".join(map(str, problems))
    assert "dmfc_rsg_20/train_rates_heldin: DMFC_RSG is scored without train rates" in text
    assert "dmfc_rsg_20/eval_rates_heldout_forward: missing key; no fp-bps without it" in text


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------


def test_cli_validate_exit_codes(tmp_path: Path, files, capsys) -> None:
    sub, tgt = files
    code, out, _ = cli(["validate", str(sub), "--target", str(tgt)], capsys)
    assert code == 0 and "OK (0 error(s), 0 warning(s))" in out
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_group(KEY).create_dataset("eval_rates_heldin", data=np.full((2, 35, 107), -1.0))
    code, out, _ = cli(["validate", str(bad)], capsys)
    assert code == 2 and "INVALID" in out
    assert f"error: {KEY}/eval_rates_heldout: missing key; expected shape (n, 35, 35)" in out


def test_cli_score_json_and_table(files, capsys) -> None:
    sub, tgt = files
    code, out, _ = cli(["score", str(sub), "--target", str(tgt), "--json"], capsys)
    assert code == 0
    scores = json.loads(out)
    expected = score_by_key(tgt, sub)[KEY].metrics
    assert list(scores) == [KEY]
    assert scores[KEY] == pytest.approx(expected)
    assert set(scores[KEY]) == {"co-bps", "vel R2", "psth R2", "fp-bps"}
    code, out, _ = cli(["score", str(sub), "--target", str(tgt), "--bootstrap", "50"], capsys)
    assert code == 0 and "95% CI (50 resamples)" in out and "co-bps" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", "{sub}", "--target", "{missing}"], "target {missing}: file not found"),
        (["score", "{junk}", "--target", "{tgt}"], "submission {junk}: not an HDF5 file"),
        (["score", "{sub}", "--target", "{tgt}", "--bootstrap", "-3"], "--bootstrap -3"),
    ],
)
def test_cli_score_bad_input_is_one_line_and_exit_2(tmp_path, files, capsys, argv, message):
    sub, tgt = files
    junk = tmp_path / "junk.h5"
    junk.write_text("junk")
    names = {"sub": sub, "tgt": tgt, "junk": junk, "missing": tmp_path / "nope.h5"}
    code, _, err = cli([a.format(**names) for a in argv], capsys)
    assert code == 2
    assert err.startswith("nlbsuite: error: ") and message.format(**names) in err
    assert err.count("\n") == 1


def test_cli_score_reports_wrong_shapes(tmp_path: Path, case, capsys) -> None:
    tgt, sub = case
    sub = dict(sub, eval_rates_heldout=sub["eval_rates_heldout"][:, :, :30])
    spath = write_submission(tmp_path / "s.h5", {KEY: sub})
    tpath = write_target(tmp_path / "t.h5", {KEY: tgt})
    code, _, err = cli(["score", str(spath), "--target", str(tpath)], capsys)
    assert code == 2
    assert (
        f"submission {spath}: {KEY}/eval_rates_heldout: shape (8, 35, 30); expected (8, 35, 35)"
        in err
    )


def test_cli_submit_then_score(tmp_path: Path, capsys) -> None:
    pytest.importorskip("nlbsuite.runner")
    target = tmp_path / "target.h5"
    argv = ["submit", "--model", "mean_rate", "--dataset", "lorenz_tiny", "--preset", "smoke",
            "--out", str(tmp_path / "submissions"), "--target-out", str(target)]  # fmt: skip
    code, out, _ = cli(argv, capsys)
    assert code == 0, out
    (path,) = (tmp_path / "submissions").iterdir()
    assert path.name == "mean_rate_lorenz_tiny_20ms.h5"
    assert validate_submission(path, target) == []
    code, out, _ = cli(["score", str(path), "--target", str(target), "--json"], capsys)
    assert code == 0
    ((key, scores),) = json.loads(out).items()
    assert key.startswith("lorenz") and key.endswith("_20")
    assert {"co-bps", "psth R2", "fp-bps"} <= set(scores)
    assert scores["co-bps"] < 0.2  # a mean-rate model: little above the null model
