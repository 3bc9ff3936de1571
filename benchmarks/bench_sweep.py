"""Ray's cost and gain for ``nlbsuite sweep``: the same runs one after another in one process
and as a sweep on a local Ray, side by side in one run of this script.

1. Serial: :func:`nlbsuite.runner.run` for each run (records written, data loaded once).
2. Ray start-up: ``ray.init`` of a local Ray (the sweep's default), timed on its own.
3. Sweep: :func:`nlbsuite.sweep.sweep` of the same runs on that Ray, 2 at a time
   (one CPU each), records written by the driver.
4. Overhead per run: the cheapest model (``mean_rate``, milliseconds of work) ``--cheap``
   times serially and as a sweep with one run at a time; (sweep - serial) / runs.

    python benchmarks/bench_sweep.py [--models smoothing mean_rate] [--dataset lorenz_tiny]
                                     [--seeds 0 1 2] [--cheap 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # local Ray on loopback only


def serial(specs, results: Path) -> float:
    from nlbsuite.datasets import load_dataset
    from nlbsuite.runner import run

    data = {}
    start = time.perf_counter()
    for s in specs:
        key = (s.dataset, s.bin_width_ms)
        if key not in data:
            data[key] = load_dataset(s.dataset, bin_width_ms=s.bin_width_ms)
        run(s.model, data[key], seed=s.seed, preset=s.preset, overrides=dict(s.overrides),
            results_dir=results, log=None)
    return time.perf_counter() - start


def swept(specs, results: Path, cpus: float) -> float:
    from nlbsuite.sweep import sweep

    start = time.perf_counter()
    report = sweep(specs, results_dir=results, cpus_per_run=cpus, progress=False, log=lambda _: None)
    assert report.ok and len(report.done) == len(specs), report.summary()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smoothing", "mean_rate"])
    parser.add_argument("--dataset", default="lorenz_tiny")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--cheap", type=int, default=10, help="mean_rate runs for the overhead")
    args = parser.parse_args()

    import ray

    from nlbsuite.sweep import _start_ray, plan

    specs = plan(args.models, [args.dataset], seeds=args.seeds)
    cheap = plan(["mean_rate"], [args.dataset], seeds=list(range(100, 100 + args.cheap)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t_serial = serial(specs, tmp / "a" / "results")
        t_cheap_serial = serial(cheap, tmp / "c" / "results")
        start = time.perf_counter()
        _start_ray(ray, None)
        t_init = time.perf_counter() - start
        try:
            swept(cheap[:2], tmp / "w" / "results", 1.0)  # start the workers once
            t_sweep = swept(specs, tmp / "b" / "results", 1.0)
            t_cheap_sweep = swept(cheap, tmp / "d" / "results", 2.0)  # one at a time
        finally:
            ray.shutdown()
    n = len(specs)
    print(f"{n} runs ({', '.join(args.models)} on {args.dataset}, seeds {args.seeds}), "
          f"{os.cpu_count()} cores:")
    print(f"  one after another        {t_serial:7.1f} s")
    print(f"  sweep on local Ray       {t_sweep:7.1f} s  (+ Ray start-up {t_init:.1f} s)")
    print(f"  ratio serial / sweep     {t_serial / t_sweep:7.2f}x  "
          f"(with start-up: {t_serial / (t_sweep + t_init):.2f}x)")
    over = (t_cheap_sweep - t_cheap_serial) / len(cheap)
    print(f"Ray overhead per run ({len(cheap)} mean_rate runs one at a time): {over:.2f} s "
          f"(serial {t_cheap_serial / len(cheap):.2f} s/run, sweep "
          f"{t_cheap_sweep / len(cheap):.2f} s/run)")


if __name__ == "__main__":
    main()
