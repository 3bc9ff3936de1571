"""``nlbsuite prepare DATASET``: build (and cache) NLB tensors, optionally export them."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="build NLB tensors from NWB files (cached); --export writes nlb_tools h5 files",
        description="Build the train/eval tensors of an NLB dataset exactly as nlb_tools "
        "does (val phase with evaluation target and PSTHs, or test phase), cache them, and "
        "optionally export train_input.h5 / eval_input.h5 / eval_target.h5.",
    )
    p.add_argument("dataset", help="NLB dataset name, e.g. mc_maze_small (see 'nlbsuite datasets')")
    p.add_argument("--phase", default="val", help="val (default) or test")
    p.add_argument(
        "--bin", dest="bin_width_ms", type=int, default=5, help="bin width in ms: 5 or 20"
    )
    p.add_argument(
        "--nwb",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="NWB file(s) to use instead of the data directory",
    )
    p.add_argument(
        "--data-dir", type=Path, help="data directory (default $NLBSUITE_DATA or the user cache)"
    )
    p.add_argument(
        "--synthetic", action="store_true", help="use a synthetic session in the dataset's layout"
    )
    p.add_argument(
        "--export", type=Path, metavar="DIR", help="write nlb_tools-layout h5 files here"
    )
    p.add_argument("--seed", type=int, default=0, help="jitter seed (DMFC_RSG), as nlb_tools' seed")
    p.add_argument("--no-cache", action="store_true", help="rebuild and do not store in the cache")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from nlbsuite.catalog import check_bin_width, check_phase
    from nlbsuite.nlb.prepare import export, load_nlb, synthetic_paths
    from nlbsuite.nlb.specs import get_spec

    get_spec(args.dataset)
    check_phase(args.phase)
    check_bin_width(args.bin_width_ms)
    paths = args.nwb
    if args.synthetic:
        paths = synthetic_paths(args.dataset, root=args.data_dir)
    start = time.perf_counter()
    data = load_nlb(
        args.dataset,
        args.phase,
        args.bin_width_ms,
        nwb_paths=paths,
        data_dir=args.data_dir,
        seed=args.seed,
        use_cache=not args.no_cache,
    )
    print(f"{data.summary()}  [{time.perf_counter() - start:.2f} s]")
    if args.export is not None:
        for path in export(data, args.export):
            print(f"wrote {path}")
    return 0
