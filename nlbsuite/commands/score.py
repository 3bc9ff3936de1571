"""``nlbsuite score``: score an existing submission file against an eval-target file."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from nlbsuite.errors import require


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score a submission h5 against an eval-target h5 exactly as nlb_tools does",
    )
    p.add_argument("submission", type=Path, help="submission file (EvalAI / nlb_tools layout)")
    p.add_argument(
        "--target",
        type=Path,
        help="eval-target file in nlb_tools' eval_target.h5 / eval_data_*.h5 layout "
        "(default: NLB's released test targets, see 'nlbsuite fetch test-targets')",
    )
    p.add_argument(
        "--json", action="store_true", help="print {dataset_key: {metric: value}} as JSON"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="N bootstrap resamples of the eval trials for 95%% intervals (e.g. 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument(
        "--per-neuron", action="store_true", help="also show co-bps of each held-out neuron"
    )
    p.set_defaults(func=run)


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from nlbsuite.submission import score_file

    require(args.bootstrap >= 0, f"--bootstrap {args.bootstrap}: expected a count >= 0")
    report = score_file(args.submission, args.target, n_boot=args.bootstrap, seed=args.seed)
    scores = report.scores
    for key in report.skipped:
        print(f"note: '{key}' is not in the target file; not scored", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        out: dict[str, dict[str, object]] = {}
        for key, s in scores.items():
            out[key] = {m: _num(v) for m, v in s.flat().items()}
            if args.per_neuron and s.per_neuron_bps is not None:
                out[key]["per-neuron co-bps"] = [_num(float(v)) for v in s.per_neuron_bps]
        print(json.dumps(out, indent=2))
        return 0
    rows = []
    for key, s in scores.items():
        for metric, value in s.metrics.items():
            row = [key, metric, f"{value:.4f}"]
            if s.ci:
                lo, hi = s.ci[metric]
                row.append(f"[{lo:.4f}, {hi:.4f}]")
            rows.append(row)
    headers = ["dataset", "metric", "value"]
    if any(s.ci for s in scores.values()):
        headers.append(f"95% CI ({args.bootstrap} resamples)")
    print(tabulate(rows, headers=headers, tablefmt="simple"))
    if args.per_neuron:
        for key, s in scores.items():
            if s.per_neuron_bps is not None:
                vals = " ".join(f"{v:.3f}" for v in s.per_neuron_bps)
                print(f"\n{key} co-bps per held-out neuron: {vals}")
    return 0
