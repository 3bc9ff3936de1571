"""Compare two result folders metric by metric: the CI regression gate.

Runs are matched by their :class:`~nlbsuite.results.RunKey` (model, preset, config hash,
dataset, bin width, phase), the leaderboard's rows, so two configs of one model are never
mixed; each metric is averaged over seeds. A metric *regresses* when it moves the wrong way
(per :data:`METRICS`) by more than the tolerance. Runs present on one side only are listed
and counted in the verdict, never compared with anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tabulate import tabulate

from nlbsuite.catalog import METRICS
from nlbsuite.leaderboard import metric_order
from nlbsuite.results import ResultRecord, RunKey, load_records


@dataclass
class Change:
    key: RunKey
    metric: str
    base: float
    new: float

    @property
    def delta(self) -> float:
        return self.new - self.base

    def regressed(self, tolerance: float) -> bool:
        higher = METRICS[self.metric].higher_is_better if self.metric in METRICS else True
        worse_by = -self.delta if higher else self.delta
        return bool(worse_by > tolerance) or (np.isfinite(self.base) and not np.isfinite(self.new))


def _means(records: list[ResultRecord]) -> dict[RunKey, dict[str, float]]:
    sums: dict[RunKey, dict[str, list[float]]] = {}
    for r in records:
        per = sums.setdefault(r.run_key, {})
        for m, v in r.metrics.items():
            per.setdefault(m, []).append(v)
    return {k: {m: float(np.mean(v)) for m, v in ms.items()} for k, ms in sums.items()}


def compare_dirs(
    base_dir: str | Path, new_dir: str | Path, tolerance: float = 0.01
) -> tuple[str, list[Change]]:
    """Markdown table of metric changes and the list of regressions beyond ``tolerance``."""
    base, new = _means(load_records(base_dir)), _means(load_records(new_dir))
    rows, regressions = [], []
    for key in sorted(set(base) & set(new)):
        for metric in metric_order(set(base[key]) & set(new[key])):
            if metric in METRICS and not METRICS[metric].ranked:
                continue
            ch = Change(key, metric, base[key][metric], new[key][metric])
            bad = ch.regressed(tolerance)
            regressions += [ch] if bad else []
            rows.append(
                [
                    key.dataset_key,
                    key.phase,
                    key.model,
                    f"{key.preset}-{key.config_hash}",
                    metric,
                    f"{ch.base:.4f}",
                    f"{ch.new:.4f}",
                    f"{ch.delta:+.4f}",
                    "REGRESSION" if bad else "ok",
                ]
            )
    lines = [
        tabulate(
            rows,
            headers=[
                "dataset",
                "phase",
                "model",
                "preset-config",
                "metric",
                "base",
                "new",
                "change",
                "status",
            ],
            tablefmt="github",
            disable_numparse=True,
        )
    ]
    only_base, only_new = sorted(set(base) - set(new)), sorted(set(new) - set(base))
    for label, only in (("only in base", only_base), ("only in new", only_new)):
        lines += [f"- {label}: {key.label()}" for key in only]
    verdict = (
        f"{len(regressions)} regression(s) beyond tolerance {tolerance}"
        if regressions
        else f"no regression beyond tolerance {tolerance}"
    )
    verdict += (
        f" ({len(set(base) & set(new))} run(s) compared, {len(only_base)} only in base, "
        f"{len(only_new)} only in new)"
    )
    return "\n".join([*lines, "", verdict]) + "\n", regressions
