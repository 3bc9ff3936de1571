"""``nlbsuite compare BASE NEW``: metric changes between two result folders; exit 1 on a
regression beyond the tolerance (the CI gate)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two result folders; exit 1 on a regression")
    p.add_argument("base", type=Path, help="baseline results folder (e.g. leaderboard/results)")
    p.add_argument("new", type=Path, help="new results folder")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="allowed drop per metric before it counts as a regression (default 0.01)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.compare import compare_dirs

    table, regressions = compare_dirs(args.base, args.new, args.tolerance)
    print(table, end="")
    return 1 if regressions else 0
