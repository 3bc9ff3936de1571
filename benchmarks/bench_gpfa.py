"""GPFA fit time and peak memory against the number of train trials (not run by pytest).

A synthetic session in MC_Maze's 5 ms shape (trials x 140 bins x 137 held-in + 45 held-out
neurons, Poisson counts from 8 smooth latents) is fit once per trial count, each in a fresh
process so that its peak resident memory is its own::

    python benchmarks/bench_gpfa.py --trials 50 100 200 --em-iters 20 [--latent-dim 52]

``--readout FILE.h5`` instead fits GPFA once to a real val tensor file (NLB's latent dim for
the dataset) and scores held-out readouts from the same latents: the exact minimiser of the
Poisson GLM objective (``fit_poisson_batch``) against NLB's early-stopped per-neuron
``PoissonRegressor`` fits, with the ridge fit on train trials only or on train + eval::

    python benchmarks/bench_gpfa.py --readout ../shared/data/mc_maze_small/mc_maze_small_val_tensors.h5
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


def readouts(path: str, em_iters: int) -> None:
    """Held-out co-bps of four readouts of one GPFA fit (see the module docstring)."""
    from baselines.gpfa import GPFA, fit_gpfa, fit_rectified_ridge, predict_rectified
    from baselines.smoothing import (
        fit_poisson_batch,
        fit_poisson_glms,
        predict_poisson_batch,
        predict_poisson_glms,
    )
    from nlbsuite.adapter import cpu_threads
    from nlbsuite.datasets import load_dataset
    from nlbsuite.scoring import bits_per_spike

    data = load_dataset(None, path=path)
    model = GPFA(GPFA.make_config("cpu", {"em_max_iters": em_iters}))
    dim, ridge_alpha, glm_alpha = model.settings(data.dataset)
    np.random.seed(0)
    with cpu_threads(1):
        gpfa = fit_gpfa(data.train_spikes_heldin, data.bin_width_ms, model.config, dim)
        train = gpfa.latents(data.train_spikes_heldin).reshape(-1, dim)
        evals = gpfa.latents(data.eval_spikes_heldin).reshape(-1, dim)
        y_in = data.train_spikes_heldin.reshape(-1, data.n_heldin)
        e_in = data.eval_spikes_heldin.reshape(-1, data.n_heldin)
        y_out = data.train_spikes_heldout.reshape(-1, data.n_heldout)
        print(f"{data.key}: latent dim {dim}, ridge alpha {ridge_alpha}, GLM alpha {glm_alpha}")
        print("| ridge fit on | held-out GLMs | co-bps | L-BFGS iterations (median, max) |")
        print("|---|---|---|---|")
        for both in (False, True):
            ridge = fit_rectified_ridge(
                np.vstack([train, evals]) if both else train,
                np.vstack([y_in, e_in]) if both else y_in,
                ridge_alpha,
            )
            x_tr, x_ev = predict_rectified(ridge, train), predict_rectified(ridge, evals)
            theta = fit_poisson_batch(x_tr, y_out, glm_alpha)
            glms = fit_poisson_glms(x_tr, y_out, glm_alpha)
            iters = [g.n_iter_ for g in glms]
            for name, rates, its in (
                ("exact minimiser", predict_poisson_batch(theta, x_ev), "-"),
                ("NLB's PoissonRegressor loop", predict_poisson_glms(glms, x_ev),
                 f"{np.median(iters):.0f}, {max(iters)}"),
            ):
                score = bits_per_spike(rates.reshape(data.eval_spikes_heldout.shape),
                                       data.eval_spikes_heldout)
                where = "train + eval" if both else "train"
                print(f"| {where} | {name} | {score:.4g} | {its} |", flush=True)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's baselines
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--em-iters", type=int, help="EM iterations (series: 20; readout: 100, cpu)")
    p.add_argument("--latent-dim", type=int, default=52)
    p.add_argument("--readout", metavar="FILE.h5", help="compare held-out readouts on a file")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.readout:
        readouts(args.readout, args.em_iters or 100)
        return
    args.em_iters = args.em_iters or 20
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
