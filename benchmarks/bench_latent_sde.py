"""Latent SDE benchmark: Lorenz quality per drift, calibration, real MC_Maze_Small, and the
torchsde Brownian-interval pitfall.

    PYTHONPATH=. python benchmarks/bench_latent_sde.py                 # everything
    PYTHONPATH=. python benchmarks/bench_latent_sde.py --part lorenz --drifts hybrid
    PYTHONPATH=. python benchmarks/bench_latent_sde.py --part pitfall

Lorenz and MC_Maze_Small runs go through ``nlbsuite.runner.run`` (``cpu`` preset, seed 0) and
write leaderboard records; the Lorenz records get ``extras`` with the 90% predictive-interval
coverage of the true rates and the parameter breakdown. Runs with one torch thread by default
(the machine is shared); the issue's checks are printed at the end.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torchsde

from baselines.latent_sde import (
    DRIFTS,
    LatentSDE,
    LatentSDEConfig,
    LatentSDEModule,
    interval_coverage,
)
from nlbsuite.data import PhaseData, phase_data_from_h5
from nlbsuite.lorenz import make_lorenz
from nlbsuite.results import default_results_dir, load_record, record_path, save_record
from nlbsuite.runner import load_run_model, run

MC_MAZE_SMALL = Path("/work/shared/data/mc_maze_small/mc_maze_small_val_tensors.h5")


def parameter_breakdown(model: LatentSDE) -> dict[str, int]:
    """Trainable parameters per part of the model."""
    m = model.module
    parts = {
        "encoder": [m.encoder, m.to_context, m.to_z0],
        "prior_drift": [m.prior_drift],
        "posterior_net": [m.posterior_net],
        "readout": [m.readout] + ([m.behavior] if m.behavior is not None else []),
    }
    out = {k: sum(p.numel() for mod in v for p in mod.parameters()) for k, v in parts.items()}
    out["other"] = model.n_parameters() - sum(out.values())
    return out


def smoothing_cobps(results: Path, key: str) -> float | None:
    """co-bps of the recorded smoothing run for a dataset key (None if not recorded)."""
    for path in sorted(results.glob(f"{key}__val__smoothing__*.json")):
        return load_record(path).metrics.get("co-bps")
    return None


def run_one(
    data: PhaseData, drift: str, results: Path, overwrite: bool, level: float, recompute: bool
) -> dict:
    record = run(
        "latent_sde",
        data,
        preset="cpu",
        seed=0,
        overrides={"drift": drift},
        results_dir=results,
        overwrite=overwrite,
    )
    row = {"drift": drift, "params": record.n_parameters, "fit s": record.fit_seconds}
    row.update(
        {k: record.metrics.get(k) for k in ("co-bps", "fp-bps", "rate R2", "co-bps / ceiling")}
    )
    if data.truth is not None:
        if "coverage" not in record.extras or overwrite or recompute:
            model = load_run_model(record_path(results, record))
            assert isinstance(model, LatentSDE)
            intervals = model.predict_intervals(data.model_input(), level=level)
            width = np.mean(intervals.upper.eval_rates_heldout - intervals.lower.eval_rates_heldout)
            record.extras.update(
                {
                    "coverage": interval_coverage(intervals, data.truth),
                    "coverage_level": level,
                    "coverage_n_samples": model.cfg.n_samples,
                    "mean_interval_width_heldout": float(width),
                    "parameters": parameter_breakdown(model),
                }
            )
            save_record(record, results)
        row["coverage"] = record.extras["coverage"]
    return row


def print_rows(rows: list[dict]) -> None:
    keys = list(rows[0])
    print(" | ".join(f"{k:>16}" for k in keys))
    for row in rows:
        cells = [f"{v:>16.4f}" if isinstance(v, float) else f"{v!s:>16}" for v in row.values()]
        print(" | ".join(cells))


def bench_lorenz(drifts: list[str], results: Path, overwrite: bool, recompute: bool) -> None:
    data = make_lorenz(phase="val", seed=0)
    print(f"\n== {data.summary()}")
    rows = []
    for drift in drifts:
        rows.append(run_one(data, drift, results, overwrite, 0.9, recompute))
        print_rows(rows[-1:])
    print_rows(rows)
    smooth = smoothing_cobps(results, data.key)
    by = {r["drift"]: r for r in rows}
    print(f"smoothing co-bps (record): {smooth}")
    for r in rows:
        print(
            f"[{r['drift']}] co-bps > smoothing: {smooth is not None and r['co-bps'] > smooth}; "
            f">= 90% ceiling: {r['co-bps / ceiling'] >= 0.9}; rate R2 >= 0.9: "
            f"{r['rate R2'] >= 0.9}; 90% interval coverage {r['coverage']:.3f}"
        )
    if "hybrid" in by and "neural" in by:
        h, n = by["hybrid"], by["neural"]
        print(
            f"hybrid vs neural: {n['params'] / h['params']:.1f}x fewer parameters "
            f"({h['params']} vs {n['params']}), co-bps difference "
            f"{h['co-bps'] - n['co-bps']:+.4f} (within 0.01: {abs(h['co-bps'] - n['co-bps']) <= 0.01})"
        )


def bench_mc_maze(drifts: list[str], results: Path, overwrite: bool, recompute: bool) -> None:
    if not MC_MAZE_SMALL.exists():
        print(f"\n== MC_Maze_Small skipped: {MC_MAZE_SMALL} not found")
        return
    data = phase_data_from_h5(MC_MAZE_SMALL)
    print(f"\n== {data.summary()}")
    rows = [run_one(data, drift, results, overwrite, 0.9, recompute) for drift in drifts]
    print_rows(rows)
    smooth = smoothing_cobps(results, data.key)
    for r in rows:
        above = smooth is not None and r["co-bps"] > smooth
        print(f"[{r['drift']}] co-bps {r['co-bps']:.4f} vs smoothing {smooth}: above = {above}")


def bench_pitfall(repeats: int = 3) -> None:
    """sdeint over 100 Euler steps of 10 ms, batch 64: default Brownian motion with float32
    bin times vs float64 times vs an explicit BrownianInterval(dt=...)."""
    print("\n== torchsde Brownian-interval pitfall (100 steps, batch 64, no grad)")
    torch.manual_seed(0)
    cfg = LatentSDEConfig(method="euler")
    sde = LatentSDEModule(cfg, n_heldin=22, n_neurons=30, step_s=1.0)
    sde.eval()
    y0 = torch.randn(64, sde.state_dim)
    dt = 0.01
    times = {}

    def timed(name: str, ts: torch.Tensor, bm_dt: float | None, step: float = dt) -> None:
        best = float("inf")
        for _ in range(repeats):
            bm = None
            if bm_dt is not None:
                bm = torchsde.BrownianInterval(
                    t0=float(ts[0]), t1=float(ts[-1]), size=y0.shape, dt=bm_dt, entropy=0
                )
            start = time.perf_counter()
            with torch.no_grad():
                torchsde.sdeint(sde, y0, ts, bm=bm, method="euler", dt=step)
            best = min(best, time.perf_counter() - start)
        times[name] = best
        print(f"{name:>44}: {best:.3f} s")

    ts32 = torch.arange(51, dtype=torch.float32) * 0.02  # 50 bins of 20 ms, 2 steps per bin
    timed("default BrownianInterval, float32 times", ts32, None)
    timed("default BrownianInterval, float64 times", ts32.double(), None)
    timed("explicit BrownianInterval(dt=dt), float32", ts32, dt)
    steps = torch.arange(51, dtype=torch.float32) * 2  # the model's scheme: time in steps
    timed("model: times in solver steps, explicit dt=1", steps, 1.0, step=1.0)
    base = times["default BrownianInterval, float32 times"]
    for name, t in times.items():
        print(f"{name:>44}: {base / t:.1f}x faster than the default")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["lorenz", "maze", "pitfall", "all"], default="all")
    parser.add_argument("--drifts", default=",".join(DRIFTS), help="comma-separated drifts")
    parser.add_argument("--maze-drifts", default="hybrid", help="drifts for MC_Maze_Small")
    parser.add_argument("--results", type=Path, default=None, help="results folder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true", help="redo recorded runs")
    parser.add_argument(
        "--recompute-extras", action="store_true", help="redo coverage of recorded runs"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = args.results or default_results_dir()
    print(f"torch threads: {torch.get_num_threads()}; results: {results}")
    if args.part in ("pitfall", "all"):
        bench_pitfall()
    if args.part in ("lorenz", "all"):
        bench_lorenz(args.drifts.split(","), results, args.overwrite, args.recompute_extras)
    if args.part in ("maze", "all"):
        bench_mc_maze(args.maze_drifts.split(","), results, args.overwrite, args.recompute_extras)


if __name__ == "__main__":
    main()
