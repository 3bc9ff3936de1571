"""``nlbsuite report``: a static HTML report of the result records (opens from file://)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="build the HTML report (index, run and comparison pages)")
    p.add_argument("--results", type=Path, help="results folder (default: leaderboard/results)")
    p.add_argument("--out", type=Path, help="output folder (default: site/ beside the results)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from nlbsuite.report import build_report
    from nlbsuite.results import default_results_dir

    start = time.perf_counter()
    index = build_report(args.results or default_results_dir(), args.out)
    print(f"report: {index} ({time.perf_counter() - start:.1f} s); open it in a browser")
    return 0
