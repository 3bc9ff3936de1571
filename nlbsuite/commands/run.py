"""``nlbsuite run``: fit a model, score it, record the result, refresh the leaderboard.

With no arguments: the smoothing baseline on Lorenz (val phase, seed 0), offline.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any

from nlbsuite.errors import UserError


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["hidden=64", "lr=1e-3"]`` -> ``{"hidden": 64, "lr": 0.001}`` (Python literals)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set '{item}': expected KEY=VALUE, e.g. --set hidden=64")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a model on a dataset and score it (default: smoothing on Lorenz)"
    )
    p.add_argument("--model", default="smoothing", help="model name (see `nlbsuite models`)")
    p.add_argument("--dataset", default="lorenz", help="dataset name (see `nlbsuite datasets`)")
    p.add_argument(
        "--data",
        type=Path,
        help="tensor file in nlb_tools' h5 layout instead of "
        "--dataset (dataset and phase read from its name)",
    )
    p.add_argument("--target", type=Path, help="eval-target h5 for --data (nlb_tools layout)")
    p.add_argument("--nwb", type=Path, nargs="+", help="NWB file(s) of an NLB dataset")
    p.add_argument("--phase", choices=["val", "test"], default="val")
    p.add_argument("--bin", type=int, dest="bin_width_ms", help="bin width in ms (5 or 20)")
    p.add_argument("--seed", type=int, nargs="+", default=[0], help="model seed(s)")
    p.add_argument("--preset", default="cpu", help="config preset: smoke, cpu or paper")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field (repeatable)",
    )
    p.add_argument(
        "--results",
        type=Path,
        help="results folder (default: $NLBSUITE_RESULTS or leaderboard/results of this project)",
    )
    p.add_argument("--overwrite", action="store_true", help="redo runs that already have results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from nlbsuite.datasets import load_dataset
    from nlbsuite.leaderboard import aggregate, table_markdown, write_leaderboard
    from nlbsuite.results import default_results_dir, load_records
    from nlbsuite.runner import run as run_model

    results = args.results or default_results_dir()
    if args.data is not None and not args.data.exists():
        raise UserError(f"--data {args.data}: file not found")
    data = load_dataset(
        None if args.data else args.dataset,
        phase=args.phase,
        bin_width_ms=args.bin_width_ms,
        path=args.data,
        target=args.target,
        nwb=args.nwb,
    )
    print(f"data: {data.summary()}")
    overrides = parse_overrides(args.overrides)
    for seed in tqdm(
        args.seed, desc=f"{args.model} on {data.key}", unit="seed", disable=len(args.seed) < 2
    ):
        rec = run_model(
            args.model,
            data,
            seed=seed,
            preset=args.preset,
            overrides=overrides,
            results_dir=results,
            overwrite=args.overwrite,
            log=print,
        )
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in rec.metrics.items())
        print(f"seed {seed}: {metrics} (fit {rec.fit_seconds:.1f} s)")
    md = write_leaderboard(results)
    print(f"\n{data.key} ({data.phase}) — leaderboard {md}\n")
    print(table_markdown(aggregate(load_records(results))[(data.key, data.phase)]))
    return 0
