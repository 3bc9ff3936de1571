"""``nlbsuite submit``: train a model on one or several datasets and write one submission
file holding every dataset group, validated against the dataset sizes."""

from __future__ import annotations

import argparse
from pathlib import Path

from nlbsuite.catalog import BIN_WIDTHS_MS, PHASES

ALL = "all"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="train a model and write one submission file (one group per dataset key)",
    )
    p.add_argument("--model", required=True, help="model name (see `nlbsuite models`)")
    p.add_argument(
        "--dataset",
        required=True,
        nargs="+",
        help=f"dataset name(s) (see `nlbsuite datasets`), or '{ALL}' for the seven NLB datasets",
    )
    p.add_argument("--phase", choices=PHASES, default="val", help="default: val")
    p.add_argument(
        "--bin",
        type=int,
        nargs="+",
        dest="bin_width_ms",
        choices=BIN_WIDTHS_MS,
        help="bin width(s), ms (default: 5 for NLB datasets, 20 for Lorenz); '--bin 5 20' "
        "writes both groups of each dataset",
    )
    p.add_argument("--preset", default="cpu", help="config preset: smoke, cpu or paper")
    p.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    p.add_argument(
        "--out", type=Path, default=Path("submissions"), help="folder (default: submissions/)"
    )
    p.add_argument(
        "--into",
        type=Path,
        metavar="FILE",
        help="add the groups to FILE, keeping its other datasets",
    )
    p.add_argument(
        "--target-out",
        type=Path,
        metavar="FILE",
        help="also write the eval targets (val phase, synthetic data) for `nlbsuite score`",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.catalog import official_cards
    from nlbsuite.datasets import load_dataset
    from nlbsuite.runner import submit
    from nlbsuite.submission import target_group, write_target

    names = [c.name for c in official_cards()] if args.dataset == [ALL] else args.dataset
    widths = args.bin_width_ms or [None]
    datasets = [
        load_dataset(name, phase=args.phase, bin_width_ms=width)
        for name in names
        for width in widths
    ]
    for data in datasets:
        print(f"data: {data.summary()}")
    targets = {}
    if args.target_out is not None:  # fail before training if there is no target
        targets = {data.key: target_group(data) for data in datasets}
    if args.into is not None:
        path = args.into
    elif len(datasets) == 1:
        path = args.out / f"{args.model}_{names[0]}_{datasets[0].bin_width_ms}ms.h5"
    else:
        path = args.out / f"{args.model}_{args.phase}.h5"
    result = submit(
        args.model,
        datasets,
        path,
        phase=args.phase,
        preset=args.preset,
        seed=args.seed,
        merge=args.into is not None,
    )
    print(f"wrote {result.path} (groups: {', '.join(result.keys)})")
    if targets:
        write_target(args.target_out, targets, merge=True)
        print(f"wrote {args.target_out} (eval targets, groups: {', '.join(targets)})")
    for problem in result.problems:
        print(problem)
    return 0 if result.ok else 2
