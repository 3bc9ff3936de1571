"""SLDS benchmarks: fit time and peak memory against the number of trials, and a 20 ms copy of
the real MC_Maze_Small val tensors.

    python benchmarks/bench_slds.py scale --trials 32 64 128   # synthetic MC_Maze-like session
    python benchmarks/bench_slds.py rebin OUT.h5               # 5 ms tensors -> 20 ms

``scale`` fits the model (one child process per size, so peak RSS is per fit) on a synthetic
session shaped like MC_Maze at 5 ms (140 + 40 forward bins, 137 held-in + 45 held-out
neurons; Poisson counts from smooth random rates), with the ``--preset`` settings and
``--set`` overrides, and prints fit seconds (wall and CPU) and peak resident memory per trial count.

``rebin`` sums the spike tensors over groups of 4 bins (140 -> 35 bins, forward 40 -> 10)
and averages the velocity over the same groups; the output name ends in ``_20`` so
``nlbsuite run --data OUT.h5`` reads it as 20 ms.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAZE_VAL = Path("/work/shared/data/mc_maze_small/mc_maze_small_val_tensors.h5")


def synthetic_maze(n_trials: int, seed: int = 0) -> np.ndarray:
    """(trial, 180, 182) Poisson counts from rates driven by 8 smooth random latents."""
    rng = np.random.default_rng(seed)
    n_time, n_neurons, dim = 180, 137 + 45, 8
    t = np.arange(n_time) * 0.005
    freqs = rng.uniform(0.5, 3.0, size=dim)
    phases = rng.uniform(0, 2 * np.pi, size=(n_trials, dim))
    x = np.sin(2 * np.pi * freqs * t[:, None] + phases[:, None, :])
    c = rng.normal(size=(n_neurons, dim)) * 0.4
    rates = np.exp(x @ c.T + np.log(0.05))
    return rng.poisson(rates).astype(float)


def fit_one(n_trials: int, preset: str, overrides: dict) -> dict:
    """Fit on a synthetic session of ``n_trials``; seconds and peak RSS (MiB) of this process."""
    from baselines.slds import SLDS, SLDSFit

    y = synthetic_maze(n_trials)
    cfg = SLDS.make_config(preset, overrides)
    k, dim, l2_a, l2_b = SLDS(cfg)._settings("mc_maze")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), time.process_time()
    SLDSFit(k, dim, l2_a, l2_b, cfg).fit(y)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"K": k, "D": dim, "fit_s": seconds, "cpu_s": cpu, "peak_mib": peak, "base_mib": base}


def bench_scale(trials: list[int], preset: str, overrides: dict) -> None:
    print(f"SLDS fit on synthetic MC_Maze-shaped sessions, preset {preset} {overrides or ''}")
    print(
        "| train trials | K | D | fit wall s | fit CPU s | CPU s per trial | peak RSS MiB (before fit) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in trials:
        out = subprocess.run(
            [sys.executable, __file__, "_one", str(n), preset, json.dumps(overrides)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {n} | {r['K']} | {r['D']} | {r['fit_s']:.1f} | {r['cpu_s']:.1f} "
            f"| {r['cpu_s'] / n:.3f} | {r['peak_mib']:.0f} ({r['base_mib']:.0f}) |",
            flush=True,
        )


def rebin(out: Path, factor: int = 4) -> None:
    """Write the 5 ms val tensors summed over ``factor`` bins (velocity averaged) to ``out``."""
    import h5py

    from nlbsuite.fileio import atomic_path

    with h5py.File(MAZE_VAL, "r") as f:
        arrays = {k: f[k][()] for k in f}
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        for key, arr in arrays.items():
            n = arr.shape[1] // factor
            grouped = arr[:, : n * factor].reshape(arr.shape[0], n, factor, -1)
            f[key] = grouped.mean(axis=2) if "behavior" in key else grouped.sum(axis=2)
    print(f"{out}: " + ", ".join(f"{k} {v.shape[1] // factor} bins" for k, v in arrays.items()))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(fit_one(int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]))))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["scale", "rebin"])
    p.add_argument("out", nargs="?", type=Path, help="rebin: output .h5 (name ending in _20)")
    p.add_argument("--trials", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE config override")
    args = p.parse_args()
    if args.part == "rebin":
        rebin(args.out or ROOT / "mc_maze_small_val_tensors_20.h5")
        return
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    bench_scale(args.trials, args.preset, overrides)


if __name__ == "__main__":
    main()
