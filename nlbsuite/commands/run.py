"""``nlbsuite run``: fit a model, score it, record the result, refresh the leaderboard.

With no arguments: the smoothing baseline on Lorenz (val phase, seed 0), offline.
``--phase test``: train on train + val trials, predict the test trials, write the
submission, score it against NLB's released targets (or ``--target``).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any

from nlbsuite.catalog import DEFAULT_DATASET, PHASES
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
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset name (see `nlbsuite datasets`)")
    p.add_argument(
        "--data",
        type=Path,
        help="tensor file in nlb_tools' h5 layout instead of "
        "--dataset (dataset and phase read from its name)",
    )
    p.add_argument(
        "--target",
        type=Path,
        help="eval-target h5 (nlb_tools layout): for --data in the val phase; in the test "
        "phase instead of NLB's released targets",
    )
    p.add_argument(
        "--nwb",
        type=Path,
        nargs="+",
        help="NWB file(s) of an NLB dataset; with --data and --phase test: the test NWB file",
    )
    p.add_argument("--phase", choices=PHASES, default="val")
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
    from nlbsuite.leaderboard import aggregate, table_markdown, write_leaderboard
    from nlbsuite.results import default_results_dir, load_records
    from nlbsuite.runner import run_seeds

    results = args.results or default_results_dir()
    data = _load(args)
    print(f"data: {data.summary()}")
    records = run_seeds(
        args.model,
        data,
        args.seed,
        preset=args.preset,
        overrides=parse_overrides(args.overrides),
        target=args.target if data.phase == "test" else None,
        results_dir=results,
        overwrite=args.overwrite,
        log=print,
    )
    for rec in records:
        if not rec.metrics:  # test phase without targets: submission written, nothing scored
            continue
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in rec.metrics.items())
        print(f"seed {rec.seed}: {metrics} (fit {rec.fit_seconds:.1f} s)")
        for note in rec.notes:
            print(f"note: {note}")
    scored = [r for r in records if r.metrics]
    if not scored:
        return 0
    md = write_leaderboard(results)
    label = scored[0].phase_label
    print(f"\n{data.key} ({label}) — leaderboard {md}\n")
    print(table_markdown(aggregate(load_records(results))[(data.key, label)]))
    return 0


def _load(args: argparse.Namespace):  # -> PhaseData
    from nlbsuite.datasets import load_dataset

    if args.data is not None and not args.data.exists():
        raise UserError(f"--data {args.data}: file not found")
    if args.phase == "test" and args.data is not None and args.nwb:
        from nlbsuite.testphase import load_test_phase

        return load_test_phase(
            None if args.dataset == DEFAULT_DATASET else args.dataset,
            args.bin_width_ms or 5,
            nwb=args.nwb,
            tensors=args.data,
        )
    data = load_dataset(
        None if args.data else args.dataset,
        phase=args.phase,
        bin_width_ms=args.bin_width_ms,
        path=args.data,
        target=args.target if args.phase == "val" else None,
        nwb=args.nwb,
    )
    if args.phase == "test" and data.eval_spikes_heldout is not None:
        raise UserError(
            f"--data {args.data}: a val-phase tensor file (it has eval_spikes_heldout); for the "
            "test phase add the test NWB file (--nwb FILE) or give a test-phase tensor file"
        )
    return data
