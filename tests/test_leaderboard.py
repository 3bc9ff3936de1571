import pytest

from nlbsuite.leaderboard import aggregate, render_markdown
from nlbsuite.results import ResultRecord


def record(model, seed, cobps, dataset="lorenz"):
    return ResultRecord(model=model, preset="cpu", config={}, config_hash="abc", dataset=dataset,
                        bin_width_ms=20, phase="val", seed=seed, metrics={"co-bps": cobps},
                        fit_seconds=1.0, predict_seconds=0.1, n_parameters=10)


def test_mean_std_over_seeds_and_best_in_bold():
    recs = [record("a", 0, 0.1), record("a", 1, 0.3), record("b", 0, 0.25),
            record("a", 0, 0.5, dataset="mc_maze")]
    tables = aggregate(recs)
    assert set(tables) == {("lorenz_20", "val"), ("mc_maze_20", "val")}
    row_a = next(r for r in tables[("lorenz_20", "val")] if r.model == "a")
    assert row_a.seeds == [0, 1]
    assert row_a.metrics["co-bps"] == pytest.approx((0.2, 0.1))
    md = render_markdown(tables)
    assert "**0.2500**" in md  # b's 0.25 beats a's mean 0.2
    assert "0.2000 ± 0.1000" in md
    assert md.index("## lorenz_20") < md.index("## mc_maze_20")
