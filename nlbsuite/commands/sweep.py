"""``nlbsuite sweep``: models x datasets x bins x presets x ``--set`` grid x seeds on Ray."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run the cross product of models, datasets, bins, presets, settings and seeds "
        "on Ray (resumable)",
    )
    p.add_argument("--models", nargs="+", required=True, metavar="M", help="model names")
    p.add_argument(
        "--datasets",
        nargs="+",
        required=True,
        metavar="D",
        help="dataset names, or tensor files in nlb_tools' h5 layout (FILE.h5)",
    )
    p.add_argument("--bins", nargs="+", type=int, metavar="MS", help="bin widths (5, 20)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="S", help="model seeds")
    p.add_argument(
        "--presets",
        nargs="+",
        default=["cpu"],
        metavar="P",
        help="presets (smoke, cpu, paper) or config files saved by `nlbsuite tune`",
    )
    p.add_argument(
        "--set",
        dest="grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config field's values to sweep (repeatable; the cross product is run)",
    )
    p.add_argument(
        "--results",
        type=Path,
        help="results folder (default: $NLBSUITE_RESULTS or leaderboard/results of this project)",
    )
    p.add_argument(
        "--address",
        help="join a running Ray cluster: auto or HOST:PORT (default: start a local Ray)",
    )
    p.add_argument("--cpus-per-run", type=float, default=1.0, metavar="N")
    p.add_argument("--gpus-per-run", type=float, default=0.0, metavar="F")
    p.add_argument("--overwrite", action="store_true", help="redo runs that already have results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.sweep import import_ray, parse_grid, plan, sweep

    import_ray()  # without Ray: one line before any work
    specs = plan(
        args.models,
        args.datasets,
        bins=args.bins,
        seeds=args.seeds,
        presets=args.presets,
        grid=parse_grid(args.grid),
    )
    report = sweep(
        specs,
        results_dir=args.results,
        address=args.address,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        overwrite=args.overwrite,
    )
    print(report.summary())
    return 0 if report.ok else 1
