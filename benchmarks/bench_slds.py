"""SLDS fit time and peak memory against the number of train trials (not run by pytest).

    python benchmarks/bench_slds.py --trials 50 100 200 400 --set n_iters=2 --set n_init_iters=2
    python benchmarks/bench_slds.py --preset paper --trials 50 100 200 --set n_iters=1 ...

Fits the model (one child process per size, so peak RSS is per fit) on a synthetic session
shaped like MC_Maze at 5 ms (140 + 40 forward bins, 137 held-in + 45 held-out neurons;
Poisson counts from smooth random rates), with the ``--preset`` settings for ``mc_maze``
(cpu: the tutorial's K=3, D=15; paper: NLB's K=6, D=38) and ``--set`` overrides, and prints
per trial count: the initialisation's seconds (PCA + ARHMM EM), the seconds per Laplace-EM
iteration, and the peak resident memory. ``--extrapolate N`` evaluates least-squares lines
through the rows at N trials with the preset's iteration counts (an extrapolation).
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
    fit = SLDSFit(k, dim, l2_a, l2_b, cfg)
    init_s = 0.0
    init_arhmm = fit._init_arhmm

    def timed_init(*args):  # the initialisation's share (PCA before it is negligible)
        nonlocal init_s
        start = time.perf_counter()
        out = init_arhmm(*args)
        init_s = time.perf_counter() - start
        return out

    fit._init_arhmm = timed_init
    start = time.perf_counter()
    fit.fit(y)
    seconds = time.perf_counter() - start
    return {
        "trials": n_trials,
        "K": k,
        "D": dim,
        "fit_s": round(seconds, 2),
        "init_s": round(init_s, 2),
        "em_iter_s": round((seconds - init_s) / cfg.n_iters, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def extrapolate(rows: list[dict], n: int, preset: str) -> None:
    """Least-squares lines through the rows, evaluated at ``n`` trials (an extrapolation)."""
    from baselines.slds import SLDS

    cfg = SLDS.make_config(preset)
    t = np.array([r["trials"] for r in rows], float)
    line = lambda key: np.polyval(np.polyfit(t, [r[key] for r in rows], 1), n)  # noqa: E731
    init_per_iter = line("init_s") / (rows[-1]["n_init_iters"] + 1)
    total = init_per_iter * (cfg.n_init_iters + 1) + line("em_iter_s") * cfg.n_iters
    print(
        f"extrapolated to {n} trials, preset {preset} ({cfg.n_init_iters} ARHMM + "
        f"{cfg.n_iters} Laplace-EM iterations): {line('em_iter_s'):.0f} s per Laplace-EM "
        f"iteration, fit ~ {total:.0f} s, peak RSS ~ {line('peak_rss_mb'):.0f} MiB"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(fit_one(int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]))))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE config override")
    p.add_argument("--extrapolate", type=int, metavar="N", help="trial count to extrapolate to")
    args = p.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    sys.path.insert(0, str(ROOT))
    from baselines.slds import SLDS

    n_init = SLDS.make_config(args.preset, overrides).n_init_iters
    rows = []
    for n in args.trials:
        out = subprocess.run(
            [sys.executable, __file__, "_one", str(n), args.preset, json.dumps(overrides)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "n_init_iters": n_init})
        print(json.dumps(rows[-1]), flush=True)
    if args.extrapolate and len(rows) > 1:
        extrapolate(rows, args.extrapolate, args.preset)


if __name__ == "__main__":
    main()
