"""GPFA fit time and peak memory against the number of train trials (not run by pytest).

A synthetic session in MC_Maze's 5 ms shape (trials x 140 bins x 137 held-in + 45 held-out
neurons, Poisson counts from 8 smooth latents) is fit once per trial count, each in a fresh
process so that its peak resident memory is its own::

    python benchmarks/bench_gpfa.py --trials 50 100 200 --em-iters 20 [--latent-dim 52]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def synthetic_session(n_trials: int, seed: int = 0) -> object:
    from nlbsuite.data import PhaseData

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 180)
    phase = rng.uniform(0, 2 * np.pi, size=(n_trials + 20, 1, 8))
    latents = np.sin(2 * np.pi * t[None, :, None] * np.arange(1, 9) / 4 + phase)
    log_rates = latents @ rng.normal(scale=0.5, size=(8, 182)) - 3.0
    spikes = rng.poisson(np.exp(log_rates)).astype(float)
    train, evals = spikes[:n_trials], spikes[n_trials:]
    return PhaseData(
        dataset="synthetic_mc_maze",
        bin_width_ms=5,
        phase="val",
        train_spikes_heldin=train[:, :140, :137],
        train_spikes_heldout=train[:, :140, 137:],
        eval_spikes_heldin=evals[:, :140, :137],
        train_spikes_heldin_forward=train[:, 140:, :137],
        train_spikes_heldout_forward=train[:, 140:, 137:],
    )


def one(n_trials: int, em_iters: int, latent_dim: int) -> dict[str, float]:
    from baselines.gpfa import GPFA

    data = synthetic_session(n_trials)
    model = GPFA(GPFA.make_config("paper", {"em_max_iters": em_iters, "latent_dim": latent_dim}))
    start = time.perf_counter()
    model.fit(data)
    fit = time.perf_counter() - start
    model.predict(data)
    return {
        "trials": n_trials,
        "fit_s": round(fit, 2),
        "fit_predict_s": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--em-iters", type=int, default=20)
    p.add_argument("--latent-dim", type=int, default=52)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.em_iters, args.latent_dim)))
        return
    for n in args.trials:
        cmd = [sys.executable, __file__, "--one", str(n), "--em-iters", str(args.em_iters)]
        cmd += ["--latent-dim", str(args.latent_dim)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        print(out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
