"""GPFA fit time and peak memory against the number of train trials (not run by pytest).

A synthetic session in MC_Maze's 5 ms shape (trials x 140 bins x 137 held-in + 45 held-out
neurons, 40 forward bins, Poisson counts from 8 smooth latents), named ``mc_maze`` so the
model takes NLB's MC_Maze settings (52 latents, ridge alpha 0.01, GLM alpha 0), is fit once
per trial count, each in a fresh process so that its peak resident memory is its own::

    python benchmarks/bench_gpfa.py --trials 100 200 400 800 --em-iters 3

Per row: the whole ``fit`` (factor-analysis start, ``--em-iters`` EM iterations, latents,
readout), the mean seconds per EM iteration (elephant's ``fit_info``), and the peak RSS.
``--extrapolate N`` adds a least-squares line through the rows (seconds and MiB against
trials) evaluated at N trials with the cpu (100) and paper (500) EM iterations.

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
        dataset="mc_maze",
        bin_width_ms=5,
        phase="val",
        train_spikes_heldin=train[:, :140, :137],
        train_spikes_heldout=train[:, :140, 137:],
        eval_spikes_heldin=evals[:, :140, :137],
        train_spikes_heldin_forward=train[:, 140:, :137],
        train_spikes_heldout_forward=train[:, 140:, 137:],
    )


def one(n_trials: int, em_iters: int) -> dict[str, float]:
    from elephant.gpfa import gpfa_core

    from baselines.gpfa import GPFA

    data = synthetic_session(n_trials)
    model = GPFA(GPFA.make_config("paper", {"em_max_iters": em_iters, "em_tol": 0.0}))
    info: dict = {}
    fit_core = gpfa_core.fit

    def timed_fit(*args, **kw):  # keep elephant's per-iteration times
        params, fit_info = fit_core(*args, **kw)
        info.update(fit_info)
        return params, fit_info

    gpfa_core.fit = timed_fit
    start = time.perf_counter()
    model.fit(data)
    fit = time.perf_counter() - start
    model.predict(data)
    iters = info["iteration_time"]
    return {
        "trials": n_trials,
        "em_iters": len(iters),
        "fit_s": round(fit, 2),
        "em_iter_s": round(float(np.mean(iters)), 3),
        "fit_predict_s": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def extrapolate(rows: list[dict], n: int) -> None:
    """Least-squares lines through the rows, evaluated at ``n`` trials (an extrapolation)."""
    t = np.array([r["trials"] for r in rows], float)
    line = lambda key: np.polyval(np.polyfit(t, [r[key] for r in rows], 1), n)  # noqa: E731
    per_iter = line("em_iter_s")
    other = line("fit_s") - rows[-1]["em_iters"] * line("em_iter_s")
    print(f"extrapolated to {n} trials: {per_iter:.1f} s per EM iteration, {other:.0f} s besides")
    for name, iters in (("cpu", 100), ("paper", 500)):
        print(f"  {name} ({iters} EM iterations): fit ~ {other + iters * per_iter:.0f} s")
    print(f"  peak RSS ~ {line('peak_rss_mb'):.0f} MiB")


def fit_poisson_batch(
    x: np.ndarray,
    y: np.ndarray,
    alpha: float,
    max_iter: int = 2000,
    gtol: float = 1e-6,
) -> np.ndarray:
    """Poisson GLMs for all columns of ``y`` at once: the minimiser of scikit-learn's
    ``PoissonRegressor`` objective, mean(exp(eta) - y eta) + alpha/2 |w|^2 with
    eta = x w + b, per output.

    ``x``: (samples, feature); ``y``: (samples, output). Returns (feature + 1, output): the
    weights, then the intercepts. One L-BFGS run on the summed objectives (they are
    independent), preconditioned by the Cholesky factor of the features' second moments and
    each output's mean count, so that it converges in tens of iterations where per-neuron
    solvers take hundreds.

    Not the models' readout (that is ``baselines.smoothing.fit_poisson_glms``, NLB's
    early-stopped fit, which differs at small alphas); ``--readout`` compares the two.
    """
    from scipy import optimize
    from threadpoolctl import threadpool_limits

    n, p = x.shape
    x1 = np.concatenate([x, np.ones((n, 1))], axis=1)
    chol = np.linalg.cholesky(x1.T @ x1 / n + 1e-10 * np.eye(p + 1))
    precond = np.linalg.inv(chol).T  # theta = precond @ v * scale
    scale = 1.0 / np.sqrt(np.maximum(y.mean(axis=0), 1e-3))
    init = np.zeros((p + 1, y.shape[1]))
    init[p] = np.log(y.mean(axis=0) + 1e-6)
    v0 = chol.T @ init / scale
    penalty = np.ones((p + 1, 1))
    penalty[p] = 0.0

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        theta = precond @ v.reshape(p + 1, -1) * scale
        eta = x1 @ theta
        mu = np.exp(np.minimum(eta, 50.0))
        loss = (mu - y * eta).sum() / n + 0.5 * alpha * (penalty * theta**2).sum()
        grad = x1.T @ (mu - y) / n + alpha * penalty * theta
        return loss, (precond.T @ grad * scale).ravel()

    with threadpool_limits(1, user_api="blas"):  # threads only slow these small products
        res = optimize.minimize(
            objective,
            v0.ravel(),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "gtol": gtol, "ftol": 1e-15, "maxcor": 20},
        )
    return precond @ res.x.reshape(p + 1, -1) * scale


def predict_poisson_batch(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(samples, output) rates of :func:`fit_poisson_batch` weights, clipped as NLB's script."""
    from baselines.smoothing import RATE_CLIP

    return np.clip(np.exp(x @ theta[:-1] + theta[-1]), *RATE_CLIP)


def readouts(path: str, em_iters: int) -> None:
    """Held-out co-bps of four readouts of one GPFA fit (see the module docstring)."""
    from baselines.gpfa import GPFA, fit_gpfa, fit_rectified_ridge, predict_rectified
    from baselines.smoothing import fit_poisson_glms, predict_poisson_glms
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
    p.add_argument("--trials", type=int, nargs="+", default=[100, 200, 400, 800])
    p.add_argument("--em-iters", type=int, help="EM iterations (series: 3; readout: 100, cpu)")
    p.add_argument("--extrapolate", type=int, metavar="N", help="trial count to extrapolate to")
    p.add_argument("--readout", metavar="FILE.h5", help="compare held-out readouts on a file")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.readout:
        readouts(args.readout, args.em_iters or 100)
        return
    args.em_iters = args.em_iters or 3
    if args.one:
        print(json.dumps(one(args.one, args.em_iters)))
        return
    rows = []
    for n in args.trials:
        cmd = [sys.executable, __file__, "--one", str(n), "--em-iters", str(args.em_iters)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if args.extrapolate and len(rows) > 1:
        extrapolate(rows, args.extrapolate)


if __name__ == "__main__":
    main()
