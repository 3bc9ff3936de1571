"""``nlbsuite fetch DATASET | test-targets``: download an NLB dandiset, or NLB's released
test targets."""

from __future__ import annotations

import argparse
from pathlib import Path

TEST_TARGETS = "test-targets"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fetch",
        help="download an NLB dataset's NWB files from DANDI, or the released test targets",
        description="Download the dataset's pinned dandiset version into the data directory "
        "($NLBSUITE_DATA or the user cache), or with 'test-targets' NLB's released test-split "
        "evaluation file (nlb_tools' data/eval_data_test.h5, 106 MB, sha256-checked). "
        "Both resume an interrupted download and fail within 2 s when offline.",
    )
    p.add_argument("dataset", help=f"NLB dataset name (e.g. mc_maze_small), or '{TEST_TARGETS}'")
    p.add_argument(
        "--data-dir", type=Path, help="data directory (default $NLBSUITE_DATA or the user cache)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dataset == TEST_TARGETS:
        import os

        from nlbsuite.testtargets import URL, fetch_test_targets

        url = os.environ.get("NLBSUITE_TEST_TARGETS_URL", URL)
        print(fetch_test_targets(args.data_dir, url=url, progress=True))
        return 0
    from nlbsuite.nlb.fetch import fetch

    for path in fetch(args.dataset, args.data_dir):
        print(path)
    return 0
