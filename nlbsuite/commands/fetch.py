"""``nlbsuite fetch DATASET``: download an NLB dandiset with the dandi client."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fetch",
        help="download an NLB dataset's NWB files from DANDI (resumable)",
        description="Download the dataset's pinned dandiset version into the data directory "
        "($NLBSUITE_DATA or the user cache). Fails within 2 s when DANDI is unreachable.",
    )
    p.add_argument("dataset", help="NLB dataset name, e.g. mc_maze_small")
    p.add_argument(
        "--data-dir", type=Path, help="data directory (default $NLBSUITE_DATA or the user cache)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.nlb.fetch import fetch

    for path in fetch(args.dataset, args.data_dir):
        print(path)
    return 0
