"""``nlbsuite leaderboard``: regenerate the leaderboard from result records."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="regenerate leaderboard README.md and CSV")
    p.add_argument("--results", type=Path, help="results folder (default: leaderboard/results)")
    p.add_argument("--out", type=Path, help="output folder (default: the results' parent)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.leaderboard import write_leaderboard
    from nlbsuite.results import default_results_dir

    md = write_leaderboard(args.results or default_results_dir(), args.out)
    print(md.read_text())
    return 0
