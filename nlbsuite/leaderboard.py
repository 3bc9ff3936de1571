"""The leaderboard, generated from result records (never edited by hand).

One table per dataset key and phase: a row per run key (:class:`~nlbsuite.results.RunKey`:
model, preset, config hash on that dataset phase) and model code (records whose code
fingerprints differ are never averaged together: a row's seeds ran the same code, and rows
of one run key that differ only in code are labelled ``code <sha8>``), each metric as
mean ± std over seeds, the best mean per metric in bold (direction from
:data:`nlbsuite.catalog.METRICS`). Written as ``README.md`` (markdown via tabulate) and
``leaderboard.csv`` next to the results folder.

An ensemble (``nlbsuite ensemble``) is one record: its row names its members' seeds, and it
counts as older code when a member ran older code or its record is gone (replaced).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from nlbsuite.catalog import METRICS
from nlbsuite.ensemble import PRESET as ENSEMBLE_PRESET
from nlbsuite.results import ResultRecord, RunKey, load_records, results_lock, write_result_file

GroupKey = tuple[str, str]  # (dataset key, phase)


@dataclass
class Row:
    """Aggregate of one model configuration's runs (over seeds) on one dataset phase."""

    model: str
    preset: str
    config_hash: str
    seeds: list[int]
    config: dict
    code_fingerprint: str
    n_parameters: int
    fit_seconds: float
    metrics: dict[str, tuple[float, float]]  # name -> (mean, std over seeds)
    # ensembles: (model, code fingerprint, seed) of each member record found; members gone
    members: list[tuple[str, str, int]] = field(default_factory=list)
    missing_members: int = 0

    @property
    def is_ensemble(self) -> bool:
        return self.preset == ENSEMBLE_PRESET


def metric_order(names: set[str]) -> list[str]:
    """Metrics in the canonical order of METRICS, unknown ones last (sorted)."""
    known = [m for m in METRICS if m in names]
    return known + sorted(names - set(known))


def aggregate(records: list[ResultRecord]) -> dict[GroupKey, list[Row]]:
    """One row per run key and code fingerprint (over seeds), grouped in tables by
    (dataset key, phase)."""
    by_key: dict[tuple[RunKey, str], list[ResultRecord]] = defaultdict(list)
    by_id = {rec.run_id: rec for rec in records}
    for rec in records:
        by_key[(rec.run_key, rec.code_fingerprint)].append(rec)
    tables: dict[GroupKey, list[Row]] = defaultdict(list)
    for key, code in sorted(by_key, key=lambda k: (k[0].dataset_key, k[0].phase, k)):
        recs = by_key[(key, code)]
        member_ids = recs[0].config.get("members", []) if key.preset == ENSEMBLE_PRESET else []
        found = [by_id[m] for m in member_ids if m in by_id]
        names = {m for r in recs for m in r.metrics}
        stats = {}
        for name in names:
            vals = np.array([r.metrics[name] for r in recs if name in r.metrics], dtype=float)
            stats[name] = (float(np.mean(vals)), float(np.std(vals)))
        tables[(key.dataset_key, key.phase)].append(
            Row(
                key.model,
                key.preset,
                key.config_hash,
                sorted(r.seed for r in recs),
                recs[0].config,
                code,
                max(r.n_parameters for r in recs),
                float(np.mean([r.fit_seconds for r in recs])),
                stats,
                [(m.model, m.code_fingerprint, m.seed) for m in found],
                len(member_ids) - len(found),
            )
        )
    return dict(tables)


def _best(rows: list[Row], metric: str) -> float | None:
    info = METRICS.get(metric)
    if info is not None and not info.ranked:
        return None
    vals = [
        r.metrics[metric][0]
        for r in rows
        if metric in r.metrics and np.isfinite(r.metrics[metric][0])
    ]
    if not vals:
        return None
    return max(vals) if info is None or info.higher_is_better else min(vals)


def _fmt(mean: float, std: float, n: int) -> str:
    if not np.isfinite(mean):
        return "nan"
    return f"{mean:.4f}" if n < 2 else f"{mean:.4f} ± {std:.4f}"


def config_labels(rows: list[Row]) -> dict[int, str]:
    """For rows sharing a model and preset: the config fields in which they differ
    (``drift=neural``), so variants are told apart, and ``code <sha8>`` where one
    configuration has rows from different model code; "" for a row alone."""
    labels: dict[int, str] = {}
    by_model: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        by_model[(r.model, r.preset)].append(r)
    for group in by_model.values():
        keys = sorted({k for r in group for k in r.config})
        differ = [k for k in keys if len({repr(r.config.get(k)) for r in group}) > 1]
        codes: dict[str, set[str]] = defaultdict(set)  # config hash -> code fingerprints
        for r in group:
            codes[r.config_hash].add(r.code_fingerprint)
        for r in group:
            if r.is_ensemble:
                labels[id(r)] = _members_label(r)
                continue
            parts = [f"{k}={r.config.get(k)}" for k in differ]
            if len(codes[r.config_hash]) > 1:
                parts.append(f"code {r.code_fingerprint[:8] or 'unknown'}")
            labels[id(r)] = ", ".join(parts)
    return labels


def _members_label(row: Row) -> str:
    """An ensemble's variant cell: its members' seeds (by model where they mix models), and
    how many member records are gone."""
    by_model: dict[str, list[int]] = defaultdict(list)
    for model, _, seed in row.members:
        by_model[model].append(seed)
    seeds = {model: ", ".join(map(str, sorted(s))) for model, s in sorted(by_model.items())}
    if not seeds:
        label = ""
    elif len(seeds) == 1 and row.model.startswith(next(iter(seeds))):
        label = f"members: seeds {next(iter(seeds.values()))}"
    else:
        label = "members: " + "; ".join(f"{model} {s}" for model, s in seeds.items())
    gone = f"{row.missing_members} member record(s) gone" if row.missing_members else ""
    return "; ".join(p for p in (label, gone) if p)


def current_code() -> dict[str, str]:
    """Registered model name -> the code fingerprint its source has now (not imported)."""
    from nlbsuite.provenance import source_fingerprint
    from nlbsuite.registry import model_entries

    return {name: source_fingerprint(target) for name, target in model_entries().items()}


def _codes(row: Row) -> list[tuple[str, str]]:
    """(model, code fingerprint) pairs a row's numbers come from: an ensemble's members."""
    if row.is_ensemble:
        return [(model, code) for model, code, _ in row.members]
    return [(row.model, row.code_fingerprint)]


def is_older_code(row: Row, current: dict[str, str] | None) -> bool:
    """Whether ``row`` ran code other than its registered model's current code (for an
    ensemble: a member did, or a member's record is gone)."""
    current = current or {}
    if row.missing_members:
        return True
    return any(current.get(model) and code != current[model] for model, code in _codes(row))


def _current_code_cell(row: Row, current: dict[str, str] | None) -> int | str:
    """The csv's ``current_code``: 1 or 0, "" where the model's current code is unknown."""
    known = row.missing_members or any((current or {}).get(m) for m, _ in _codes(row))
    return int(not is_older_code(row, current)) if known else ""


def table_markdown(rows: list[Row], current: dict[str, str] | None = None) -> str:
    """One dataset's table as GitHub markdown; best value per metric in bold; models whose
    row ran older code than ``current`` (model -> fingerprint) marked with a dagger."""
    metrics = metric_order({m for r in rows for m in r.metrics})
    labels = config_labels(rows)
    best = {m: _best(rows, m) for m in metrics}
    body = []
    for r in sorted(rows, key=lambda r: -r.metrics.get("co-bps", (-np.inf, 0))[0]):
        cells = []
        for m in metrics:
            if m not in r.metrics:
                cells.append("")
                continue
            mean, std = r.metrics[m]
            text = _fmt(mean, std, len(r.seeds))
            cells.append(f"**{text}**" if best[m] is not None and mean == best[m] else text)
        body.append(
            [
                f"{r.model} †" if is_older_code(r, current) else r.model,
                r.preset,
                labels[id(r)],
                len(r.seeds),
                f"{r.n_parameters:,}",
                f"{r.fit_seconds:.1f}",
                *cells,
            ]
        )
    headers = ["model", "preset", "variant", "seeds", "params", "fit s", *metrics]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def render_markdown(
    tables: dict[GroupKey, list[Row]], current: dict[str, str] | None = None
) -> str:
    parts = [
        "# nlbsuite leaderboard",
        "",
        "Generated by `nlbsuite leaderboard` from the result records in `results/`; "
        "do not edit by hand. Values are mean ± std over seeds; **bold** marks the best "
        "value per metric (lower is better for `tp corr`, higher for the others). `rate R2` and "
        "`ceiling co-bps` exist only where true rates are known (Lorenz).",
    ]
    if any(is_older_code(r, current) for rows in tables.values() for r in rows):
        parts += [
            "",
            "† the row's runs used an older version of the model's code than the current "
            "one (`code_fingerprint` in its records); `nlbsuite run` refits it with the "
            "current code. An ensemble is marked when a member is, or when a member's record "
            "is gone; `nlbsuite ensemble` rebuilds it from current runs.",
        ]
    for (key, phase), rows in tables.items():
        parts += ["", f"## {key} ({phase} phase)", "", table_markdown(rows, current)]
    return "\n".join(parts) + "\n"


def render_csv(tables: dict[GroupKey, list[Row]], current: dict[str, str] | None = None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "dataset",
            "phase",
            "model",
            "preset",
            "config_hash",
            "code_fingerprint",
            "current_code",
            "seeds",
            "n_parameters",
            "fit_seconds",
            "metric",
            "mean",
            "std",
        ]
    )
    for (key, phase), rows in tables.items():
        for r in rows:
            for m in metric_order(set(r.metrics)):
                mean, std = r.metrics[m]
                writer.writerow(
                    [
                        key,
                        phase,
                        r.model,
                        r.preset,
                        r.config_hash,
                        r.code_fingerprint,
                        _current_code_cell(r, current),
                        len(r.seeds),
                        r.n_parameters,
                        f"{r.fit_seconds:.3f}",
                        m,
                        f"{mean:.6g}",
                        f"{std:.6g}",
                    ]
                )
    return buf.getvalue()


def write_leaderboard(results_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Regenerate ``README.md`` and ``leaderboard.csv`` in ``out_dir`` (default: the parent of
    ``results_dir``) from every record in ``results_dir``. Returns the markdown path.

    Listing and writing hold the results folder's lock (:func:`results_lock`), so when
    processes record runs at once the last table written holds every record.
    """
    results_dir = Path(results_dir)
    out = Path(out_dir) if out_dir is not None else results_dir.parent
    md = out / "README.md"
    with results_lock(results_dir):
        tables = aggregate(load_records(results_dir))
        current = current_code()
        write_result_file(md, render_markdown(tables, current))
        write_result_file(out / "leaderboard.csv", render_csv(tables, current))
    return md
