"""``nlbsuite ensemble``: average the predicted rates of finished runs into a scored record."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ensemble",
        help="average finished runs' rates (same dataset key and phase) into a new record",
        description="Members: the RUNs given (result JSON files or run ids), or with --top N "
        "the N best of them by a val-phase metric (never a test metric). Each member's rates "
        "are re-predicted from its saved model.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="result JSON file or run id")
    p.add_argument("--name", default="ensemble", help="model name of the record (default: ensemble)")
    p.add_argument("--top", type=int, help="keep the N best RUNs by --metric (val phase only)")
    p.add_argument("--metric", default="co-bps", help="ranking metric for --top (default: co-bps)")
    p.add_argument(
        "--data", type=Path,
        help="nlb_tools tensor file the runs used, if not a dataset name (read at the runs' "
        "bin width: a 5 ms file is rebinned for 20 ms runs)",
    )  # fmt: skip
    p.add_argument(
        "--results", type=Path,
        help="results folder (default: $NLBSUITE_RESULTS or leaderboard/results of this project)",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.ensemble import ensemble
    from nlbsuite.leaderboard import write_leaderboard
    from nlbsuite.results import default_results_dir, record_path

    results = args.results or default_results_dir()
    record = ensemble(
        args.runs, name=args.name, top=args.top, metric=args.metric, data=args.data,
        results_dir=results,
    )  # fmt: skip
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in record.metrics.items())
    print(f"{record.run_id}: {metrics}")
    for key, value in record.extras.items():
        if key.startswith("beats_best_member"):
            print(f"beats its best member ({record.extras['best_member']}): {value}")
    print(f"recorded {record_path(Path(results), record)}; leaderboard {write_leaderboard(results)}")
    return 0
