"""``nlbsuite submit``: train a model on a dataset and write its EvalAI submission file."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "submit",
        help="train a model and write submissions/<model>_<dataset>_<bin>ms.h5 for EvalAI",
    )
    p.add_argument("--model", required=True, help="model name (see `nlbsuite models`)")
    p.add_argument("--dataset", required=True, help="dataset name (see `nlbsuite datasets`)")
    p.add_argument("--phase", choices=["val", "test"], default="val", help="default: val")
    p.add_argument("--bin", type=int, dest="bin_width_ms", choices=[5, 20], help="bin width, ms")
    p.add_argument("--preset", default="cpu", help="config preset: smoke, cpu or paper")
    p.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    p.add_argument(
        "--out", type=Path, default=Path("submissions"), help="folder (default: submissions/)"
    )
    p.add_argument(
        "--into",
        type=Path,
        metavar="FILE",
        help="add this dataset's group to FILE, keeping its other datasets",
    )
    p.add_argument(
        "--target-out",
        type=Path,
        metavar="FILE",
        help="also write the eval target (val phase, synthetic data) for `nlbsuite score`",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.datasets import load_dataset
    from nlbsuite.runner import fit_predict
    from nlbsuite.submission import (
        target_group,
        validate_submission,
        write_submission,
        write_target,
    )

    data = load_dataset(args.dataset, phase=args.phase, bin_width_ms=args.bin_width_ms)
    print(f"data: {data.summary()}")
    if args.target_out is not None:
        target = target_group(data)  # fail before training if there is no target
    pred = fit_predict(args.model, data, preset=args.preset, seed=args.seed)
    print(f"{args.model}: fit {pred.fit_seconds:.1f} s, predict {pred.predict_seconds:.1f} s")
    name = pred.model.info.name
    path = args.into or args.out / f"{name}_{args.dataset}_{data.bin_width_ms}ms.h5"
    write_submission(path, {data.key: pred.rates}, merge=args.into is not None)
    print(f"wrote {path} (group '{data.key}')")
    if args.target_out is not None:
        write_target(args.target_out, {data.key: target}, merge=True)
        print(f"wrote {args.target_out} (eval target, group '{data.key}')")
    problems = validate_submission(path)
    for problem in problems:
        print(problem)
    return 2 if any(p.severity == "error" for p in problems) else 0
