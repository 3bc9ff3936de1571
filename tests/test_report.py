"""The HTML report: the numbers each figure plots (against the scorer), the site built over
three tiny runs, its errors, and a real headless Chromium opening it from file://."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from nlbsuite.cli import main
from nlbsuite.data import EvalTarget, Rates
from nlbsuite.predictions import prediction_arrays
from nlbsuite.report import build_report, figdata
from nlbsuite.runner import fit_predict, run
from nlbsuite.scoring import bits_per_spike, evaluate
from nlbsuite.scoring.stats import Psth


def _random_rates(data, seed: int) -> Rates:
    rng = np.random.default_rng(seed)
    n_train, n_eval = len(data.train_spikes_heldin), len(data.eval_spikes_heldin)
    full = data.n_heldin + data.n_heldout
    return Rates.from_full(
        rng.gamma(2.0, 0.1, (n_train, data.n_bins, full)),
        rng.gamma(2.0, 0.1, (n_eval, data.n_bins + data.n_forward, full)),
        data.n_heldin,
        data.n_bins,
    )


def test_condition_means_are_the_scorers_jitter_aligned_averages(tiny_lorenz):
    data = tiny_lorenz
    psth = data.target.psth.copy()
    psth[:, :3] = np.nan  # a window that leaves room for jitters of up to 3 bins
    jitter = np.random.default_rng(1).integers(0, 4, len(data.eval_spikes_heldin))
    target = EvalTarget(**{**data.target.__dict__, "psth": psth, "eval_jitter": jitter})
    data = type(data)(**{**data.__dict__, "target": target})
    rates = _random_rates(data, 0)
    saved = prediction_arrays(data, rates)
    means, kept = figdata.condition_means(saved)

    scorer = Psth.build(
        psth, [rates.eval_rates_heldin, rates.eval_rates_heldout], target.eval_cond_idx,
        jitter, "x",
    )
    np.testing.assert_array_equal(kept, scorer.conditions)
    for k in range(len(kept)):
        window = np.flatnonzero(scorer.window[k])
        mean, present = scorer._weighted_mean(np.ones((1, len(jitter))), k)
        assert present[0]
        np.testing.assert_allclose(means[k][window], mean[0], rtol=1e-5)
        assert np.isnan(means[k][:3]).all()  # outside the window: not plotted
    # ... and they reproduce the recorded psth R2 (sklearn r2 per neuron, averaged).
    win = ~np.isnan(psth[kept, :, 0])
    true, pred = psth[kept][win], means[win]
    r2 = 1 - ((true - pred) ** 2).sum(0) / ((true - true.mean(0)) ** 2).sum(0)
    assert np.mean(r2) == pytest.approx(evaluate(data, rates)["psth R2"], rel=1e-4)


def test_psth_panels_show_the_highest_rate_heldout_neurons(tiny_lorenz):
    saved = prediction_arrays(tiny_lorenz, _random_rates(tiny_lorenz, 0))
    conds, neurons, pred, true = figdata.psth_panels(saved, n_conditions=2, n_neurons=3)
    heldout = saved["psth"][..., 22:].mean(axis=(0, 1))
    np.testing.assert_array_equal(neurons, 22 + np.argsort(-heldout)[:3])
    assert list(conds) == [0, 1] and pred.shape == true.shape == (2, 20, 3)
    np.testing.assert_array_equal(true, saved["psth"][[0, 1]][:, :, neurons])


def test_per_neuron_co_bps_average_to_the_scored_co_bps(tiny_lorenz):
    rates = _random_rates(tiny_lorenz, 3)
    saved = prediction_arrays(tiny_lorenz, rates)
    per = figdata.per_neuron_co_bps(saved)
    spikes = tiny_lorenz.target.eval_spikes_heldout.sum(axis=(0, 1))
    assert per.shape == (8,)
    co = evaluate(tiny_lorenz, rates)["co-bps"]
    assert float((per * spikes).sum() / spikes.sum()) == pytest.approx(co, rel=1e-5)


def test_paired_delta_is_the_co_bps_difference_with_a_paired_interval(tiny_lorenz):
    a = prediction_arrays(tiny_lorenz, _random_rates(tiny_lorenz, 0))
    b = prediction_arrays(tiny_lorenz, fit_predict("mean_rate", tiny_lorenz).rates)
    spikes = a["eval_spikes"][..., 22:]
    want = bits_per_spike(b["eval_rates"][..., 22:], spikes) - bits_per_spike(
        a["eval_rates"][..., 22:], spikes
    )
    d = figdata.paired_co_bps_delta(a, b, n_boot=200)
    assert d.value == pytest.approx(want, rel=1e-6)
    assert d.lo < d.value < d.hi
    same = figdata.paired_co_bps_delta(a, a, n_boot=50)
    assert (same.value, same.lo, same.hi) == (0.0, 0.0, 0.0)


def test_rate_scatter_and_latent_projection():
    rng = np.random.default_rng(0)
    saved = {
        "n_heldin": np.asarray(2),
        "true_rates": rng.random((5, 10, 6)),
        "eval_rates": rng.random((5, 10, 6)),
    }
    true, pred = figdata.rate_scatter(saved, max_points=50)
    assert true.shape == pred.shape == (50,)
    flat_t, flat_p = saved["true_rates"][..., 2:].ravel(), saved["eval_rates"][..., 2:].ravel()
    idx = [int(np.flatnonzero(flat_t == t)[0]) for t in true]
    np.testing.assert_array_equal(flat_p[idx], pred)  # pairs stay paired
    # Latents on a plane in 5-d: the projection keeps all their variance.
    plane = rng.normal(size=(4, 30, 2)) @ rng.normal(size=(2, 5))
    proj = figdata.latent_projection(plane)
    assert proj.shape == (4, 30, 2)
    assert proj.var(axis=(0, 1)).sum() == pytest.approx(
        (plane - plane.mean(axis=(0, 1))).var(axis=(0, 1)).sum()
    )


# ------------------------------------------------------------------------------------------
# the site over three tiny runs
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory) -> Path:
    """Results of three lorenz_tiny runs (mean_rate seeds 0 and 1, smoothing seed 0) and
    one MC_Maze-like record without saved predictions; the report built over them."""
    root = tmp_path_factory.mktemp("report")
    results = root / "leaderboard" / "results"
    for model, seed in (("mean_rate", 0), ("mean_rate", 1), ("smoothing", 0)):
        fixed = {"kern_sd_ms": 40.0, "alpha": 0.01} if model == "smoothing" else None  # no CV
        run(model, "lorenz_tiny", seed=seed, overrides=fixed, results_dir=results, log=None)
    old = run("mean_rate", "lorenz_tiny", seed=2, results_dir=results, log=None)
    (results / old.artifact).with_suffix(".npz").unlink()  # an older run: no predictions
    build_report(results, progress=False)
    return root / "leaderboard" / "site"


def test_site_has_index_run_and_compare_pages(tiny_site):
    index = (tiny_site / "index.html").read_text()
    assert index.count('<table class="sortable"') == 1
    assert "lorenz_tiny_20 — val phase" in index and "co-bps ↑" in index
    assert "reference: floor" in index and "reference: ceiling" in index
    assert index.count("★") >= 4  # best marked per ranked metric
    runs = sorted(p.name for p in (tiny_site / "runs").glob("*.html"))
    assert len(runs) == 4 and all(f'href="runs/{r}"' in index for r in runs)
    smooth = next((tiny_site / "runs").glob("*smoothing*.html")).read_text()
    for fig in ("psth", "raster", "neuron_bps", "rates_vs_truth", "true_latents"):
        assert f'src="{smooth_id(tiny_site)}/{fig}.svg"' in smooth
        assert (tiny_site / "runs" / smooth_id(tiny_site) / f"{fig}.svg").stat().st_size > 1000
    assert "config hash" in smooth and "data hash" in smooth and "Latents: this model" in smooth
    no_pred = next((tiny_site / "runs").glob("*seed2.html")).read_text()
    assert "No saved predictions" in no_pred and "--seed 2 --overwrite" in no_pred
    assert "<img" not in no_pred
    compare = (tiny_site / "compare" / "lorenz_tiny_20__val.html").read_text()
    assert "95% CI [" in compare and "neurons_0.svg" in compare


def smooth_id(site: Path) -> str:
    return next((site / "runs").glob("*smoothing*.html")).stem


def test_rebuild_removes_pages_of_removed_runs(tiny_site, tmp_path):
    results = tiny_site.parent / "results"
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    (copy / f"{smooth_id(tiny_site)}.json").unlink()
    site = tmp_path / "site"
    shutil.copytree(tiny_site, site)
    for rec in copy.glob("*.json"):  # the artifacts are found relative to the results
        data = rec.read_text().replace('"../runs/', f'"{results.parent}/runs/')
        rec.write_text(data)
    build_report(copy, site, progress=False)
    assert not (site / "runs" / f"{smooth_id(tiny_site)}.html").exists()
    assert not (site / "runs" / smooth_id(tiny_site)).exists()
    assert len(list((site / "runs").glob("*.html"))) == 3


def test_empty_or_unreadable_results_are_one_line(tmp_path, capsys):
    empty = tmp_path / "results"
    empty.mkdir()
    assert main(["report", "--results", str(empty), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no result records" in err and str(empty) in err
    (empty / "bad.json").write_text("{not json")
    assert main(["report", "--results", str(empty), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json: not a valid result JSON" in err
    assert not (tmp_path / "s").exists()  # nothing written


def test_unreadable_saved_predictions_name_the_file(tmp_path, capsys):
    results = tmp_path / "results"
    rec = run("mean_rate", "lorenz_tiny", results_dir=results, log=None)
    npz = (results / rec.artifact).with_suffix(".npz")
    npz.write_bytes(b"garbage")
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{npz.name}: unreadable saved predictions" in err


# ------------------------------------------------------------------------------------------
# a real browser
# ------------------------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


SCREENSHOTS = os.environ.get("NLBSUITE_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')"
    )
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, path: Path):
    """A page at ``path`` (file://) and the console errors and failed requests it had."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors


def _images_loaded(page) -> tuple[int, list[str]]:
    images = page.eval_on_selector_all(
        "img", "els => els.map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    )
    return len(images), [src for src, ok in images if not ok]


def test_browser_index_sorts_and_loads_every_image(browser, tiny_site, tmp_path):
    page, errors = _open(browser, tiny_site / "index.html")
    table = "#t-lorenz_tiny_20__val"
    assert page.locator(f"{table} tbody tr").count() == 3  # 2 configs + the ceiling row
    headers = page.locator(f"{table} thead th")
    names = [h.strip() for h in headers.all_inner_texts()]
    col = names.index("co-bps ↑")

    def column() -> list[float]:
        cells = page.locator(f"{table} tbody tr td:nth-child({col + 1})")
        return [float(v) for v in cells.evaluate_all("cs => cs.map(c => c.dataset.v)")]

    headers.nth(col).click()
    up = column()
    assert up == sorted(up) and up[-1] > up[0]
    headers.nth(col).click()
    assert column() == sorted(up, reverse=True)
    headers.nth(0).click()  # text column
    models = page.locator(f"{table} tbody tr td:nth-child(1)").all_inner_texts()
    assert models == sorted(models, key=str.lower)
    n, broken = _images_loaded(page)
    assert n == 1 and broken == []
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    assert errors == []
    if SCREENSHOTS:
        shutil.copy(tmp_path / "index.png", Path(SCREENSHOTS) / "test_index.png")


def test_browser_run_and_compare_pages_load_every_image(browser, tiny_site, tmp_path):
    for path in (
        tiny_site / "runs" / f"{smooth_id(tiny_site)}.html",
        tiny_site / "compare" / "lorenz_tiny_20__val.html",
    ):
        page, errors = _open(browser, path)
        n, broken = _images_loaded(page)
        assert n >= 1 and broken == [], (path.name, broken)
        assert errors == [], errors
        page.screenshot(path=str(tmp_path / f"{path.stem}.png"), full_page=True)
        page.locator("a", has_text=re.compile("leaderboard")).click()
        assert page.url.endswith("index.html#lorenz_tiny_20__val")
    assert (tmp_path / f"{smooth_id(tiny_site)}.png").stat().st_size > 10_000


def test_recorded_bootstrap_intervals_are_shown_not_ranked(tiny_site, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(tiny_site.parent / "results", results)
    path = next(results.glob("*smoothing*.json"))
    raw = json.loads(path.read_text())
    co = raw["metrics"]["co-bps"]
    raw["metrics"].update({"co-bps ci_lo": co - 0.01, "co-bps ci_hi": co + 0.02})
    raw["artifact"] = None  # no saved predictions needed here
    path.write_text(json.dumps(raw))
    build_report(results, tmp_path / "site", progress=False)
    index = (tmp_path / "site" / "index.html").read_text()
    assert f"[{co - 0.01:.4f}, {co + 0.02:.4f}]" in index
    assert "ci_lo" not in index  # a bound is no column of its own
    page = (tmp_path / "site" / "runs" / f"{path.stem}.html").read_text()
    assert f"[{co - 0.01:.4f}, {co + 0.02:.4f}]" in page


def test_velocity_figure_plots_the_decoded_and_true_traces():
    from nlbsuite.report import plots

    rng = np.random.default_rng(0)
    true, pred = rng.normal(size=(4, 30, 2)), rng.normal(size=(4, 30, 2))
    svg = plots.velocity(true, pred, [0, 2], bin_ms=20).decode()
    assert "eval trial 0" in svg and "eval trial 2" in svg and "eval trial 1" not in svg
    assert svg.count("<path") > 8  # 2 trials x 2 components x (true + decoded) lines + axes
