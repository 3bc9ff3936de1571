"""Build the static report site from result records and the predictions saved with them.

Layout of ``out`` (every file written atomically; stale pages of removed runs deleted):

- ``index.html``: one sortable table per dataset key and phase, with bar charts
  (``figures/<key>__<phase>.svg``);
- ``runs/<run id>.html`` (+ ``runs/<run id>/*.svg``): one page per run;
- ``compare/<key>__<phase>.html`` (+ figures): tables with two or more rows that have
  saved predictions.

Pages are plain HTML with inline CSS; the index has a dozen lines of JavaScript (sorting).
Everything opens offline from ``file://``.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlbsuite.catalog import METRICS
from nlbsuite.errors import UserError
from nlbsuite.fileio import atomic_write_bytes
from nlbsuite.leaderboard import Row, aggregate, config_labels, metric_order
from nlbsuite.predictions import SUFFIX, load_predictions
from nlbsuite.results import ResultRecord, RunKey, load_records

# Models that are the field's reference points rather than contenders: NLB'21's own
# baselines and the constant-rate floor. Their rows carry a "reference" label.
REFERENCE_MODELS = {
    "smoothing": "NLB'21 baseline",
    "gpfa": "NLB'21 baseline",
    "slds": "NLB'21 baseline",
    "mean_rate": "floor",
}
CI_SUFFIXES = (" ci_lo", " ci_hi")
N_BAR_METRICS = 4

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}table.sortable th{cursor:pointer}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{background:#e6f4ea;font-weight:600}tr.ref td:first-child{font-style:italic}
.tag{font-size:11px;background:#eef;border:1px solid #ccd;border-radius:3px;padding:0 4px;
font-style:normal;margin-left:4px}small{color:#666}.note{background:#fff8e1;padding:.5em .8em;
border-left:3px solid #f0b400}figure{margin:1em 0}figcaption{color:#555;font-size:13px}
img{max-width:100%}code{background:#f4f4f4;padding:0 3px}
"""

SORT_JS = """
document.querySelectorAll("table.sortable th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], asc = th.dataset.dir !== "asc";
  th.closest("tr").querySelectorAll("th").forEach(h => delete h.dataset.dir);
  th.dataset.dir = asc ? "asc" : "desc";
  const key = r => { const c = r.cells[col], v = c.dataset.v ?? c.textContent.trim();
    return v === "" ? null : (isNaN(v) ? v.toLowerCase() : Number(v)); };
  const rows = [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);
    return (x > y ? 1 : x < y ? -1 : 0) * (asc ? 1 : -1); });
  rows.forEach(r => body.appendChild(r));
}));
"""

e = html.escape


def page(title: str, body: str, script: str = "") -> bytes:
    js = f"<script>{script}</script>" if script else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>{body}{js}</body></html>\n"
    ).encode()


def arrow(metric: str) -> str:
    """↑ (higher is better), ↓ (lower) or · (not ranked: a property of the data)."""
    info = METRICS.get(metric)
    if info is None or info.higher_is_better:
        return "·" if info is not None and not info.ranked else "↑"
    return "↓"


def fmt(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.4f}"


@dataclass
class Table:
    """One dataset key and phase: its rows and the records behind each row."""

    key: str
    phase: str
    rows: list[Row]
    records: dict[int, list[ResultRecord]]  # id(row) -> records, by seed
    labels: dict[int, str]  # id(row) -> config variant label
    ci: dict[int, dict[str, tuple[float, float, int]]] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return f"{self.key}__{self.phase}"

    def metrics(self) -> list[str]:
        return metric_order({m for r in self.rows for m in r.metrics})

    def best(self, metric: str) -> float | None:
        info = METRICS.get(metric)
        if info is not None and not info.ranked:
            return None
        vals = [r.metrics[metric][0] for r in self.rows if metric in r.metrics]
        vals = [v for v in vals if np.isfinite(v)]
        if not vals:
            return None
        return min(vals) if info is not None and not info.higher_is_better else max(vals)

    def label(self, row: Row) -> str:
        variant = self.labels[id(row)]
        return f"{row.model} / {row.preset}" + (f" ({variant})" if variant else "")


def split_ci(records: list[ResultRecord]) -> tuple[list[ResultRecord], dict[str, dict]]:
    """Records without their ``"<metric> ci_lo/hi"`` entries, and those bounds by run id."""
    clean, bounds = [], {}
    for rec in records:
        ci = {k: v for k, v in rec.metrics.items() if k.endswith(CI_SUFFIXES)}
        if ci:
            bounds[rec.run_id] = ci
            rec = ResultRecord(**{**rec.__dict__, "metrics": {
                k: v for k, v in rec.metrics.items() if k not in ci
            }})
        clean.append(rec)
    return clean, bounds


def make_tables(records: list[ResultRecord]) -> list[Table]:
    """Tables of rows aggregated over seeds (bootstrap bounds kept out of the metrics); each
    row's records as recorded, bounds included."""
    clean, bounds = split_ci(records)
    by_key: dict[RunKey, list[ResultRecord]] = defaultdict(list)
    for rec in records:
        by_key[rec.run_key].append(rec)
    tables = []
    for (key, phase), rows in aggregate(clean).items():
        table = Table(key, phase, rows, {}, config_labels(rows))
        for row in rows:
            recs = sorted(
                (r for k, rs in by_key.items() for r in rs if k.dataset_key == key
                 and k.phase == phase and (k.model, k.preset, k.config_hash)
                 == (row.model, row.preset, row.config_hash)
                 and r.code_fingerprint == row.code_fingerprint),
                key=lambda r: r.seed,
            )
            table.records[id(row)] = recs
            # The bootstrap interval of the first seed that recorded one.
            ci = {}
            for rec in recs:
                b = bounds.get(rec.run_id, {})
                for m in row.metrics:
                    if m not in ci and f"{m} ci_lo" in b:
                        ci[m] = (b[f"{m} ci_lo"], b[f"{m} ci_hi"], rec.seed)
            table.ci[id(row)] = ci
        tables.append(table)
    return tables


class Site:
    """Writes one report: collects the files it wrote so stale ones can be removed."""

    def __init__(self, out: Path, results: Path):
        self.out, self.results = out, results
        self.written: set[Path] = set()
        self._saved: dict[str, dict | None] = {}

    def write(self, rel: str, data: bytes) -> str:
        path = self.out / rel
        atomic_write_bytes(path, data)
        self.written.add(path.resolve())
        return rel

    def predictions_path(self, rec: ResultRecord) -> Path | None:
        return None if not rec.artifact else (self.results / rec.artifact).with_suffix(SUFFIX)

    def saved(self, rec: ResultRecord) -> dict | None:
        """The run's saved predictions, or None when it has none."""
        if rec.run_id not in self._saved:
            path = self.predictions_path(rec)
            self._saved[rec.run_id] = (
                load_predictions(path) if path is not None and path.exists() else None
            )
        return self._saved[rec.run_id]

    def remove_stale(self) -> None:
        for sub in ("runs", "compare", "figures"):
            folder = self.out / sub
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*"), reverse=True):
                if path.is_file() and path.suffix in (".html", ".svg") and (
                    path.resolve() not in self.written
                ):
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()


# ------------------------------------------------------------------------------------------
# index
# ------------------------------------------------------------------------------------------


def _metric_cell(table: Table, row: Row, m: str, best: float | None) -> str:
    if m not in row.metrics:
        return '<td class="num" data-v=""></td>'
    mean, std = row.metrics[m]
    text = fmt(mean) + (f" ± {std:.4f}" if len(row.seeds) > 1 and np.isfinite(mean) else "")
    is_best = best is not None and mean == best
    ci = table.ci[id(row)].get(m)
    if ci is not None:
        text += f'<br><small title="bootstrap 95% CI, seed {ci[2]}">[{fmt(ci[0])}, {fmt(ci[1])}]</small>'
    v = f"{mean:.6g}" if np.isfinite(mean) else ""
    cls = "num best" if is_best else "num"
    return f'<td class="{cls}" data-v="{v}">{text}{" ★" if is_best else ""}</td>'


def table_html(table: Table, compare_link: str | None, bars: str | None) -> str:
    metrics = table.metrics()
    best = {m: table.best(m) for m in metrics}
    head = "".join(
        f'<th title="{e(METRICS[m].description if m in METRICS else m)}">{e(m)} {arrow(m)}</th>'
        for m in metrics
    )
    rows = sorted(table.rows, key=lambda r: -r.metrics.get("co-bps", (-np.inf, 0))[0])
    body = []
    for row in rows:
        ref = REFERENCE_MODELS.get(row.model)
        name = e(row.model) + (f'<span class="tag">reference: {e(ref)}</span>' if ref else "")
        seeds = " ".join(
            f'<a href="runs/{e(r.run_id)}.html">{r.seed}</a>' for r in table.records[id(row)]
        )
        cells = "".join(_metric_cell(table, row, m, best[m]) for m in metrics)
        body.append(
            f'<tr class="{"ref" if ref else "run"}"><td>{name}</td><td>{e(row.preset)}</td>'
            f"<td>{e(table.labels[id(row)])}</td>"
            f'<td data-v="{len(row.seeds)}">{seeds}</td>'
            f'<td class="num" data-v="{row.n_parameters}">{row.n_parameters:,}</td>'
            f'<td class="num" data-v="{row.fit_seconds:.3f}">{row.fit_seconds:.1f}</td>{cells}</tr>'
        )
    ceiling = [r.metrics["ceiling co-bps"][0] for r in rows if "ceiling co-bps" in r.metrics]
    if ceiling:  # synthetic data: the true rates as a reference row
        cells = "".join(
            f'<td class="num" data-v="{ceiling[0]:.6g}">{fmt(ceiling[0])}</td>'
            if m in ("co-bps", "ceiling co-bps")
            else ('<td class="num" data-v="1">1.0000</td>' if m == "co-bps / ceiling"
                  else '<td class="num" data-v=""></td>')
            for m in metrics
        )
        body.append(
            '<tr class="ref ceiling"><td>true rates<span class="tag">reference: ceiling</span>'
            '</td><td></td><td></td><td data-v="0"></td><td class="num" data-v="0"></td>'
            f'<td class="num" data-v="0"></td>{cells}</tr>'
        )
    links = f' · <a href="{e(compare_link)}">compare runs</a>' if compare_link else ""
    fig = (
        f'<figure><img src="{e(bars)}" alt="bar chart of {e(table.slug)}"><figcaption>'
        "Mean over seeds; error bars: std over seeds.</figcaption></figure>"
        if bars
        else ""
    )
    return (
        f'<h2 id="{e(table.slug)}">{e(table.key)} — {e(table.phase)} phase</h2>'
        f"<p>{len(rows)} configurations, {sum(len(r.seeds) for r in rows)} runs{links}</p>"
        f'<table class="sortable" id="t-{e(table.slug)}"><thead><tr><th>model</th>'
        f"<th>preset</th><th>variant</th><th>seeds</th><th>params</th><th>fit s</th>{head}"
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>{fig}"
    )


def bar_chart(table: Table) -> bytes | None:
    from nlbsuite.report import plots

    names = [
        m for m in table.metrics() if m not in METRICS or METRICS[m].ranked
    ][:N_BAR_METRICS]
    if not names:
        return None
    rows = sorted(table.rows, key=lambda r: -r.metrics.get("co-bps", (-np.inf, 0))[0])
    data = {
        m: (
            np.array([r.metrics.get(m, (np.nan, 0))[0] for r in rows]),
            np.array([r.metrics.get(m, (np.nan, 0))[1] for r in rows]),
        )
        for m in names
    }
    return plots.metric_bars([table.label(r) for r in rows], data, {m: arrow(m) for m in names})


# ------------------------------------------------------------------------------------------
# run pages
# ------------------------------------------------------------------------------------------


def _kv(pairs: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def rerun_hint(rec: ResultRecord) -> str:
    """The command that reruns ``rec`` and saves its predictions."""
    source = rec.data_source.split(", ")[0]
    data = f"--data {source}" if source.endswith(".h5") else f"--dataset {rec.dataset}"
    return (
        f"nlbsuite run --model {rec.model} --preset {rec.preset} {data} "
        f"--bin {rec.bin_width_ms} --phase {rec.phase} --seed {rec.seed} --overwrite"
    )


def run_figures(site: Site, rec: ResultRecord, saved: dict) -> list[tuple[str, str]]:
    """(figure path relative to the site, caption) for each figure this run's data allows,
    or ("", why not) for those it does not."""
    from nlbsuite.report import figdata, plots

    base, out = f"runs/{rec.run_id}", []
    bin_ms, n_in = rec.bin_width_ms, int(saved["n_heldin"])
    rates = saved["eval_rates"]
    trials = list(range(min(3, len(rates))))

    def add(name: str, data: Callable[[], bytes], caption: str) -> None:
        out.append((site.write(f"{base}/{name}.svg", data()), caption))

    if "psth" in saved:
        conds, neurons, pred, true = figdata.psth_panels(saved)
        add(
            "psth",
            lambda: plots.psth(conds, neurons, pred, true, bin_ms),
            "Predicted condition means (jitter-aligned as the psth R2 scorer does) against "
            "the true PSTHs, for the held-out neurons with the highest rates.",
        )
    else:
        out.append(("", "PSTH: this dataset has no PSTHs in its evaluation data."))
    if "latents" in saved:
        proj = figdata.latent_projection(saved["latents"])
        add(
            "latents",
            lambda: plots.latents(proj, saved.get("conditions"), "model latents (eval trials)"),
            "The model's eval-trial latents on their first two principal components, one "
            "line per trial coloured by condition (dot: trial start).",
        )
    else:
        out.append(("", "Latents: this model exposes none (no latents(heldin) method)."))
    if "true_latents" in saved:
        proj = figdata.latent_projection(saved["true_latents"])
        add(
            "true_latents",
            lambda: plots.latents(proj, saved.get("conditions"), "true latents (eval trials)"),
            "For reference: the synthetic data's true latents, same colouring.",
        )
    if "velocity_pred" in saved:
        add(
            "velocity",
            lambda: plots.velocity(saved["velocity_true"], saved["velocity_pred"], trials, bin_ms),
            "Hand velocity decoded from the predicted rates (ridge, alpha by 5-fold CV on the "
            "train trials) against the true velocity, for the first eval trials.",
        )
    else:
        out.append(("", "Velocity: this dataset has no eval-trial behaviour."))
    add(
        "raster",
        lambda: plots.raster(saved.get("eval_spikes"), rates, trials, n_in, bin_ms),
        "Eval trials: spikes (held-out neurons below the red line) and the predicted rates.",
    )
    if "eval_spikes" in saved:
        per = figdata.per_neuron_co_bps(saved)
        ceiling = figdata.per_neuron_ceiling(saved) if "true_rates" in saved else None
        co = rec.metrics.get("co-bps", float("nan"))
        add(
            "neuron_bps",
            lambda: plots.neuron_bps(per, co, ceiling),
            "co-bps of each held-out neuron on the eval trials"
            + (" and its ceiling (the true rates' co-bps)." if ceiling is not None else "."),
        )
    if "true_rates" in saved:
        true, pred = figdata.rate_scatter(saved)
        title = (
            f"rate R2 {fmt(rec.metrics.get('rate R2', np.nan))}; co-bps "
            f"{fmt(rec.metrics.get('co-bps', np.nan))} of ceiling "
            f"{fmt(rec.metrics.get('ceiling co-bps', np.nan))}"
        )
        add(
            "rates_vs_truth",
            lambda: plots.rates_vs_truth(true, pred, title),
            "Synthetic data: predicted against true held-out eval rates (4,000 random bins), "
            "with the ceiling: the co-bps the true rates reach.",
        )
    return out


def run_page(site: Site, rec: ResultRecord, table: Table) -> bytes:
    metrics = []
    for m in metric_order(set(rec.metrics)):
        if m.endswith(CI_SUFFIXES):
            continue
        lo, hi = rec.metrics.get(f"{m} ci_lo"), rec.metrics.get(f"{m} ci_hi")
        interval = f"[{fmt(lo)}, {fmt(hi)}]" if lo is not None else ""
        desc = METRICS[m].description if m in METRICS else ""
        metrics.append(
            f"<tr><td>{e(m)}</td><td>{arrow(m)}</td><td class='num'>{fmt(rec.metrics[m])}</td>"
            f"<td class='num'>{interval}</td><td>{e(desc)}</td></tr>"
        )
    metric_table = (
        "<table><tr><th>metric</th><th>better</th><th>value</th><th>bootstrap 95% CI</th>"
        f"<th>what</th></tr>{''.join(metrics)}</table>"
    )
    provenance = _kv(
        [
            ("run id", rec.run_id),
            ("model", rec.model),
            ("preset", rec.preset),
            ("config hash", rec.config_hash),
            ("dataset", f"{rec.dataset_key} ({rec.bin_width_ms} ms bins), {rec.phase} phase"),
            ("seed", rec.seed),
            ("data source", rec.data_source),
            ("data hash", rec.data_hash),
            ("nlbsuite", rec.nlbsuite_version),
            ("model code fingerprint", rec.code_fingerprint or "(none: older record)"),
            ("git commit", rec.git_commit),
            ("date", rec.date),
            ("device", rec.device),
            ("fit / predict seconds", f"{rec.fit_seconds:.2f} / {rec.predict_seconds:.2f}"),
            ("parameters", f"{rec.n_parameters:,}"),
            ("packages", ", ".join(f"{k} {v}" for k, v in sorted(rec.packages.items()))),
            ("chosen by the fit", json.dumps(rec.extras, sort_keys=True) if rec.extras else ""),
        ]
    )
    config = _kv([(k, json.dumps(v)) for k, v in sorted(rec.config.items())])
    saved = site.saved(rec)
    if saved is None:
        figures = (
            '<p class="note">No saved predictions for this run, so no figures: runs save '
            f"them (<code>{e(rec.run_id)}{SUFFIX}</code> beside the pickled model) since "
            "this report exists. To add them, rerun it: "
            f"<code>{e(rerun_hint(rec))}</code></p>"
        )
    else:
        parts = []
        for src, caption in run_figures(site, rec, saved):
            if src:
                parts.append(
                    f'<figure><img src="{e(src.split("/", 1)[1])}" alt="{e(caption)}">'
                    f"<figcaption>{e(caption)}</figcaption></figure>"
                )
            else:
                parts.append(f"<p><small>Not shown — {e(caption)}</small></p>")
        figures = "".join(parts)
    body = (
        f'<p><a href="../index.html#{e(table.slug)}">← leaderboard</a></p>'
        f"<h1>{e(rec.model)} on {e(rec.dataset_key)} ({e(rec.phase)}), seed {rec.seed}</h1>"
        f"<h2>Metrics</h2>{metric_table}<h2>Figures</h2>{figures}"
        f"<h2>Config</h2>{config}<h2>Provenance</h2>{provenance}"
    )
    return page(rec.run_id, body)


# ------------------------------------------------------------------------------------------
# comparison pages
# ------------------------------------------------------------------------------------------


def compare_page(site: Site, table: Table, runs: list[tuple[Row, ResultRecord]]) -> bytes:
    """Every row against the best co-bps row (``runs[0]``): metric deltas of the means over
    seeds, the paired bootstrap interval of the co-bps delta on the first seed with saved
    predictions, and per-neuron co-bps scatters."""
    from nlbsuite.report import figdata, plots

    (base_row, base_rec), others = runs[0], runs[1:]
    base = site.saved(base_rec)
    metrics = [m for m in table.metrics() if m not in METRICS or METRICS[m].ranked]
    head = "".join(f"<th>Δ {e(m)} {arrow(m)}</th>" for m in metrics)
    lines, figs = [], []
    for k, (row, rec) in enumerate(others):
        saved = site.saved(rec)
        cells = []
        for m in metrics:
            if m not in row.metrics or m not in base_row.metrics:
                cells.append("<td></td>")
                continue
            d = row.metrics[m][0] - base_row.metrics[m][0]
            text = f"{d:+.4f}"
            if m == "co-bps" and rec.data_hash == base_rec.data_hash:
                delta = figdata.paired_co_bps_delta(base, saved)
                text = (
                    f"{delta.value:+.4f}<br><small>95% CI [{delta.lo:+.4f}, {delta.hi:+.4f}]"
                    f" (seeds {base_rec.seed} vs {rec.seed})</small>"
                )
            cells.append(f'<td class="num">{text}</td>')
        lines.append(f"<tr><td>{e(table.label(row))}</td>{''.join(cells)}</tr>")
        if rec.data_hash == base_rec.data_hash:
            rel = site.write(
                f"compare/{table.slug}/neurons_{k}.svg",
                plots.paired_scatter(
                    figdata.per_neuron_co_bps(base),
                    figdata.per_neuron_co_bps(saved),
                    table.label(base_row),
                    table.label(row),
                ),
            )
            figs.append(f'<img src="{e(rel.split("/", 1)[1])}" alt="per-neuron co-bps">')
    body = (
        f'<p><a href="../index.html#{e(table.slug)}">← leaderboard</a></p>'
        f"<h1>{e(table.key)} ({e(table.phase)}): runs against {e(table.label(base_row))}</h1>"
        "<p>Rows with saved predictions only; Δ = row minus the best co-bps row among them, "
        "means over seeds. The co-bps delta's interval resamples the eval trials (1,000 "
        "times, seed 0) with the same draw for both runs (a paired bootstrap).</p>"
        f"<table><tr><th>run</th>{head}</tr>{''.join(lines)}</table>"
        f"<h2>Per-neuron co-bps, paired</h2><p>{''.join(figs)}</p>"
    )
    return page(f"compare {table.slug}", body)


def comparable_runs(site: Site, table: Table) -> list[tuple[Row, ResultRecord]]:
    """Each row's first seed with saved predictions that include eval spikes, best co-bps
    row first."""
    rows = sorted(table.rows, key=lambda r: -r.metrics.get("co-bps", (-np.inf, 0))[0])
    out = []
    for row in rows:
        for rec in table.records[id(row)]:
            saved = site.saved(rec)
            if saved is not None and "eval_spikes" in saved:
                out.append((row, rec))
                break
    return out


# ------------------------------------------------------------------------------------------
# the whole site
# ------------------------------------------------------------------------------------------


def build_report(
    results_dir: str | Path, out_dir: str | Path | None = None, *, progress: bool = True
) -> Path:
    """Write the report for every record in ``results_dir`` into ``out_dir`` (default:
    ``site/`` beside the results folder). Returns the index path.

    An empty results folder, an unreadable record or saved-predictions file is a
    :class:`UserError` naming it.
    """
    from tqdm import tqdm

    results = Path(results_dir)
    records = load_records(results)
    if not records:
        raise UserError(f"{results}: no result records (*.json) to report; run `nlbsuite run` first")
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir) if out_dir is not None else results.parent / "site"
    site = Site(out, results)
    tables = make_tables(records)
    steps = len(records) + 2 * len(tables)
    sections = []
    with tqdm(total=steps, desc="report", unit="page", disable=not progress, leave=False) as bar:
        for table in tables:
            chart = bar_chart(table)
            bars = site.write(f"figures/{table.slug}.svg", chart) if chart else None
            bar.update()
            runs = comparable_runs(site, table)
            link = None
            if len(runs) >= 2:
                link = site.write(f"compare/{table.slug}.html", compare_page(site, table, runs))
            bar.update()
            sections.append(table_html(table, link, bars))
            for row in table.rows:
                for rec in table.records[id(row)]:
                    site.write(f"runs/{rec.run_id}.html", run_page(site, rec, table))
                    bar.update()
    intro = (
        "<h1>nlbsuite report</h1><p>Generated by <code>nlbsuite report</code> from "
        f"{len(records)} result records; do not edit. One table per dataset key and phase "
        "(val and test never mixed). Cells: mean ± std over seeds; [a, b]: bootstrap 95% "
        "interval where recorded; ★ best per metric (↑ higher is better, ↓ lower, · not "
        "ranked). Rows marked <span class='tag'>reference</span> are the field's reference "
        "points. Click a column header to sort; seed numbers link to run pages.</p>"
        + "".join(f'<a href="#{e(t.slug)}">{e(t.key)} ({e(t.phase)})</a> · ' for t in tables)
    )
    index = site.write("index.html", page("nlbsuite report", intro + "".join(sections), SORT_JS))
    site.remove_stale()
    return out / index
