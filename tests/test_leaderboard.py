from pathlib import Path

import pytest

from nlbsuite.compare import compare_dirs
from nlbsuite.leaderboard import aggregate, render_markdown
from nlbsuite.results import ResultRecord, save_record


def record(model, seed, cobps, dataset="lorenz"):
    return ResultRecord(
        model=model,
        preset="cpu",
        config={},
        config_hash="abc",
        dataset=dataset,
        bin_width_ms=20,
        phase="val",
        seed=seed,
        metrics={"co-bps": cobps},
        fit_seconds=1.0,
        predict_seconds=0.1,
        n_parameters=10,
    )


def test_mean_std_over_seeds_and_best_in_bold():
    recs = [
        record("a", 0, 0.1),
        record("a", 1, 0.3),
        record("b", 0, 0.25),
        record("a", 0, 0.5, dataset="mc_maze"),
    ]
    tables = aggregate(recs)
    assert set(tables) == {("lorenz_20", "val"), ("mc_maze_20", "val")}
    row_a = next(r for r in tables[("lorenz_20", "val")] if r.model == "a")
    assert row_a.seeds == [0, 1]
    assert row_a.metrics["co-bps"] == pytest.approx((0.2, 0.1))
    md = render_markdown(tables)
    assert "**0.2500**" in md  # b's 0.25 beats a's mean 0.2
    assert "0.2000 ± 0.1000" in md
    assert md.index("## lorenz_20") < md.index("## mc_maze_20")


def _rec(chash: str, cobps: float, seed: int = 0, model: str = "lowrank_rnn") -> ResultRecord:
    rec = record(model, seed, cobps)
    rec.config_hash, rec.config = chash, {"rank": chash}
    return rec


def _write(folder: Path, records: list[ResultRecord]) -> Path:
    for rec in records:
        save_record(rec, folder)
    return folder


def test_run_key_separates_configs_of_one_model_in_leaderboard_and_compare(tmp_path):
    """Two configs of one model are two rows and are compared config by config (compare
    used to average them: rank 8 at 0.40 and rank 1 at 0.10 hid rank 8's drop to 0.35)."""
    base = [_rec("rank8", 0.40), _rec("rank1", 0.10)]
    keys = {r.run_key for r in base}
    assert len(keys) == 2 and len({r.run_key for r in [*base, _rec("rank8", 0.4, 1)]}) == 2
    rows = aggregate(base)[("lorenz_20", "val")]
    assert sorted((r.config_hash, r.metrics["co-bps"][0]) for r in rows) == [
        ("rank1", 0.10),
        ("rank8", 0.40),
    ]
    _write(tmp_path / "base", base)
    _write(tmp_path / "new", [_rec("rank8", 0.35), _rec("rank2", 0.30)])
    table, regressions = compare_dirs(tmp_path / "base", tmp_path / "new", tolerance=0.01)
    assert [(c.key.config_hash, c.base, c.new) for c in regressions] == [("rank8", 0.40, 0.35)]
    assert "- only in base: lorenz_20 / val / lowrank_rnn / cpu-rank1" in table
    assert "- only in new: lorenz_20 / val / lowrank_rnn / cpu-rank2" in table
    assert "(1 run(s) compared, 1 only in base, 1 only in new)" in table


def test_compare_cli_exit_codes_and_one_side_rows(tmp_path, capsys):
    from nlbsuite.cli import main

    _write(tmp_path / "base", [_rec("rank8", 0.40), _rec("rank1", 0.10)])
    _write(tmp_path / "same", [_rec("rank8", 0.40)])
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "same")]) == 0
    out = capsys.readouterr().out
    assert "cpu-rank8" in out and "| ok" in out and "only in base: " in out
    _write(tmp_path / "worse", [_rec("rank8", 0.38)])
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "worse")]) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_seeds_of_different_model_code_are_never_averaged():
    """A row's mean ± std is over records of one code fingerprint: seed 0 from older code and
    seeds 1, 2 from the current code are two rows, labelled by their code."""
    old, new1, new2 = record("a", 0, 0.1), record("a", 1, 0.3), record("a", 2, 0.5)
    old.code_fingerprint, new1.code_fingerprint, new2.code_fingerprint = "0ld" * 4, "n3w" * 4, "n3w" * 4
    rows = aggregate([old, new1, new2])[("lorenz_20", "val")]
    got = sorted((r.code_fingerprint, r.seeds, r.metrics["co-bps"][0]) for r in rows)
    assert got == [("0ld" * 4, [0], 0.1), ("n3w" * 4, [1, 2], pytest.approx(0.4))]
    md = render_markdown({("lorenz_20", "val"): rows})
    assert "code 0ld0ld0l" in md and "code n3wn3wn3" in md
    assert "0.4000 ± 0.1000" in md


def test_rows_from_older_model_code_are_marked(tmp_path):
    """A record whose code fingerprint is not the registered model's current source is marked
    with a dagger (and current_code 0 in the csv); one from the current code is not."""
    from nlbsuite.leaderboard import current_code, write_leaderboard
    from nlbsuite.provenance import code_fingerprint
    from nlbsuite.registry import get_model_class

    now = current_code()
    assert now["mean_rate"] == code_fingerprint(get_model_class("mean_rate"))
    fresh, stale = record("mean_rate", 0, 0.2), record("smoothing", 0, 0.3)
    fresh.code_fingerprint, stale.code_fingerprint = now["mean_rate"], "f" * 64
    _write(tmp_path / "results", [fresh, stale])
    md = write_leaderboard(tmp_path / "results").read_text()
    assert "| smoothing †" in md and "| mean_rate " in md and "mean_rate †" not in md
    assert "† the row's runs used an older version" in md
    csv_rows = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert any(line.startswith("lorenz_20,val,smoothing,cpu,abc," + "f" * 64 + ",0,") for line in csv_rows)
    assert any(line.startswith(f"lorenz_20,val,mean_rate,cpu,abc,{now['mean_rate']},1,") for line in csv_rows)


def test_ensemble_rows_name_members_and_follow_their_code(tmp_path):
    """An ensemble's row names its members' seeds; it is older code (†) when a member ran
    older code or a member's record is gone, and current when its members are current."""
    from nlbsuite.leaderboard import is_older_code

    members = [record("ndt", s, 0.38) for s in (0, 1, 2)]
    for m in members:
        m.code_fingerprint = "n3w" * 4
    ens = record("ndt_ensemble", 0, 0.39)
    ens.preset = "ensemble"
    ens.config = {"members": sorted(m.run_id for m in members), "rule": "mean of rates"}
    tables = aggregate([*members, ens])
    row = next(r for r in tables[("lorenz_20", "val")] if r.preset == "ensemble")
    assert sorted(row.members) == [("ndt", "n3w" * 4, s) for s in (0, 1, 2)]
    assert not is_older_code(row, {"ndt": "n3w" * 4})
    assert is_older_code(row, {"ndt": "0ld" * 4})
    md = render_markdown(tables, {"ndt": "n3w" * 4})
    assert "members: seeds 0, 1, 2" in md and "ndt_ensemble †" not in md
    gone = aggregate([*members[:2], ens])[("lorenz_20", "val")]
    row = next(r for r in gone if r.preset == "ensemble")
    assert row.missing_members == 1 and is_older_code(row, {"ndt": "n3w" * 4})
    assert "1 member record(s) gone" in render_markdown({("lorenz_20", "val"): gone})
    mixed = record("stndt", 0, 0.37)
    ens.model, ens.config = "deep_ensemble", {"members": sorted(m.run_id for m in [*members, mixed])}
    md = render_markdown(aggregate([*members, mixed, ens]))
    assert "members: ndt 0, 1, 2; stndt 0" in md
