"""``nlbsuite tune``: hyperparameter search on Ray Tune, selected on the val phase."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search a model's hyperparameters on Ray Tune (random, ASHA, PBT); "
        "selects on val, saves the best config",
    )
    p.add_argument("--model", required=True, help="model name (see `nlbsuite models`)")
    p.add_argument("--dataset", required=True, help="dataset name (see `nlbsuite datasets`)")
    p.add_argument("--bin", type=int, dest="bin_width_ms", help="bin width in ms (5 or 20)")
    p.add_argument("--search", default="random", help="random, asha or pbt")
    p.add_argument("--samples", type=int, default=8, help="trials (PBT: population size)")
    p.add_argument("--preset", default="cpu", help="base preset the search space overrides: a name or a config file (.json)")
    p.add_argument("--seed", type=int, default=0, help="model seed of every trial")
    p.add_argument(
        "--phase", default="val", help="val only: a search never selects on the test phase"
    )
    p.add_argument("--metric", default="co-bps", help="val metric to select by")
    p.add_argument(
        "--iterations", type=int, default=4, help="training steps per trial (ASHA, PBT)"
    )
    p.add_argument("--out", type=Path, help="config file to write (default configs/...)")
    p.add_argument(
        "--results",
        type=Path,
        help="results folder; trials go to runs/tune/ beside it (default: leaderboard/results)",
    )
    p.add_argument("--address", help="join a running Ray cluster: auto or HOST:PORT")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="N")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.selection import forbid_test_selection
    from nlbsuite.sweep import import_ray
    from nlbsuite.tune import tune

    forbid_test_selection(args.phase, "nlbsuite tune")  # before anything else, Ray included

    import_ray()
    report = tune(
        args.model,
        args.dataset,
        search=args.search,
        samples=args.samples,
        preset=args.preset,
        seed=args.seed,
        bin_width_ms=args.bin_width_ms,
        phase=args.phase,
        metric=args.metric,
        iterations=args.iterations,
        address=args.address,
        cpus_per_trial=args.cpus_per_trial,
        results_dir=args.results,
        out=args.out,
        log=lambda _: None,
    )
    print(report.summary(args.metric))
    return 0
