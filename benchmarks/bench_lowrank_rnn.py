"""lowrank_rnn benchmarks: the exact fixed-point finder's speed, and the model's scores.

    python benchmarks/bench_lowrank_rnn.py fixed-points           # N=512 units, R = 2, 3
    python benchmarks/bench_lowrank_rnn.py lorenz --ranks 1 2 3   # cpu preset, one run per rank
    python benchmarks/bench_lowrank_rnn.py maze                   # real MC_Maze_Small val

``lorenz`` and ``maze`` write leaderboard records through :func:`nlbsuite.runner.run`
(``--results``, default leaderboard/results; the fitted models go to runs/). ``lorenz``
then names the lowest rank whose co-bps beats smoothing and reaches 90% of the true-rate
ceiling with rate R2 >= 0.9. Torch runs single-threaded (``num_threads`` in the config).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SMOOTHING_LORENZ = 0.309  # smoothing co-bps, Lorenz default size, val, seed 0
SMOOTHING_MAZE = 0.116  # smoothing co-bps, real MC_Maze_Small val tensors
MAZE_VAL = Path("/work/shared/data/mc_maze_small/mc_maze_small_val_tensors.h5")


def uniform_net(n_units: int, rank: int, nonlinearity: str, seed: int = 0):
    """A network drawn like the paper's initialisation: m ~ U(+-1/sqrt R), n, h ~ U(+-1/sqrt N)."""
    from baselines.lowrank_rnn.fixed_points import PiecewiseLinearRNN

    rng = np.random.default_rng(seed)
    r, rn = 1 / np.sqrt(rank), 1 / np.sqrt(n_units)
    return PiecewiseLinearRNN(
        a=0.9,
        m=rng.uniform(-r, r, size=(n_units, rank)),
        n=rng.uniform(-rn, rn, size=(n_units, rank)),
        h=rng.uniform(-rn, rn, size=n_units),
        nonlinearity=nonlinearity,
    )


def bench_fixed_points(n_units: int, seeds: int) -> None:
    from baselines.lowrank_rnn.fixed_points import find_fixed_points

    print(f"fixed points of random rank-R networks with N = {n_units} units (wall / CPU s)")
    print("| nonlinearity | R | seed | fixed points (stable) | regions solved | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|")
    for nonlinearity in ("clipped_relu", "relu"):
        for rank in (2, 3):
            for seed in range(seeds):
                net = uniform_net(n_units, rank, nonlinearity, seed)
                cpu = time.process_time()
                fps = find_fixed_points(net)
                cpu = time.process_time() - cpu
                print(
                    f"| {nonlinearity} | {rank} | {seed} | {len(fps)} ({int(fps.stable.sum())}) "
                    f"| {fps.n_regions} | {fps.seconds:.2f} | {cpu:.2f} |",
                    flush=True,
                )
    # The plain enumeration of every region, for scale: O(H^R) regions.
    for nonlinearity, n, rank in (("clipped_relu", n_units, 2), ("clipped_relu", 128, 3)):
        net = uniform_net(n, rank, nonlinearity)
        fps = find_fixed_points(net, prune=False)
        print(
            f"unpruned {nonlinearity} N={n} R={rank}: {len(fps)} fixed points, "
            f"{fps.n_regions} regions, {fps.seconds:.2f} s",
            flush=True,
        )


def bench_lorenz(ranks: list[int], results: Path, preset: str, seed: int) -> None:
    from nlbsuite.runner import run

    rows = []
    for rank in ranks:
        rec = run(
            "lowrank_rnn",
            "lorenz",
            "val",
            seed,
            preset=preset,
            overrides={"rank": rank},
            results_dir=results,
            overwrite=True,
        )
        m = rec.metrics
        ok = m["co-bps"] > SMOOTHING_LORENZ and m["co-bps / ceiling"] >= 0.9 and m["rate R2"] >= 0.9
        rows.append((rank, m, rec.fit_seconds, rec.n_parameters, ok))
        print(
            f"rank {rank}: co-bps {m['co-bps']:.4f} ({m['co-bps / ceiling']:.1%} of ceiling "
            f"{m['ceiling co-bps']:.4f}), rate R2 {m['rate R2']:.4f}, fp-bps {m['fp-bps']:.4f}, "
            f"fit {rec.fit_seconds:.0f} s, {rec.n_parameters} parameters"
            + ("  <- meets the targets" if ok else ""),
            flush=True,
        )
    passing = [r[0] for r in rows if r[4]]
    print(f"lowest rank meeting the targets: {min(passing) if passing else 'none'}")


def bench_maze(results: Path, preset: str, seed: int) -> None:
    from nlbsuite.data import phase_data_from_h5
    from nlbsuite.runner import run

    if not MAZE_VAL.exists():
        print(f"skipped: {MAZE_VAL} not found")
        return
    data = phase_data_from_h5(MAZE_VAL)
    rec = run("lowrank_rnn", data, seed=seed, preset=preset, results_dir=results, overwrite=True)
    m = rec.metrics
    print(
        f"MC_Maze_Small val: co-bps {m['co-bps']:.4f} (smoothing {SMOOTHING_MAZE}), "
        f"fp-bps {m.get('fp-bps', float('nan')):.4f}, fit {rec.fit_seconds:.0f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["fixed-points", "lorenz", "maze"])
    p.add_argument("--units", type=int, default=512, help="fixed points: network size")
    p.add_argument("--seeds", type=int, default=2, help="fixed points: networks per setting")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", type=Path, default=ROOT / "leaderboard" / "results")
    args = p.parse_args()
    if args.part == "fixed-points":
        bench_fixed_points(args.units, args.seeds)
    elif args.part == "lorenz":
        bench_lorenz(args.ranks, args.results, args.preset, args.seed)
    else:
        bench_maze(args.results, args.preset, args.seed)


if __name__ == "__main__":
    main()
