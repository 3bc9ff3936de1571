"""lindermanlab/ssm's SLDS run as nlb_tools' SLDS tutorial ran it (not run by pytest).

The reference for ``slds``: ``slds_example.ipynb`` reports co-bps 0.1533 on MC_Maze_Small 5 ms
val from ONE run of ``ssm`` (master db6d736). This script fits ``ssm`` itself, with the
tutorial's exact calls, on the shared val tensors for chosen seeds, so that ssm's own seed
spread can be compared with ``slds``'s. Two steps, two environments:

    # 1. fit, in a throwaway env holding ssm (never a dependency of nlbsuite; see
    #    benchmarks/README.md, "SLDS against nlb_tools' tutorial", for how it was built)
    /tmp/ssm-venv/bin/python benchmarks/ssm_slds_reference.py fit --seed 0 --out /tmp/ssm0.npz
    # 2. score the saved rates with nlbsuite's scorer (the project's venv)
    .venv/bin/python benchmarks/ssm_slds_reference.py score /tmp/ssm0.npz [...]

``fit`` follows the tutorial cell by cell: train data = held-in + held-out spikes of the
train trials with their forward bins (trial, 180, 142); eval data = the eval trials' held-in
spikes zero-filled to that shape with a mask that is False on held-out neurons and forward
bins; ``ssm.SLDS(N, 3, 15, transitions="standard", emissions="poisson",
emission_kwargs=dict(link="log"), dynamics_kwargs=dict(l2_penalty_A=3000.0))``; ``fit``
(laplace_em, structured_meanfield, 25 ARHMM initialisation iterations, 25 iterations,
alpha 0.2); ``approximate_posterior`` on the eval data (25 iterations, alpha 0.2);
rates = ``slds.smooth`` of the posterior means. The tutorial sets no seed; here numpy's
global generator (the one ssm draws from) is seeded with ``--seed`` before the model is
built. Besides the rates, the output keeps the ELBO traces, fit seconds, the learned
parameters and the posterior's discrete-state usage, for comparisons with ``slds``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from baselines.slds.network import SLDSFit

DATA = Path("../shared/data/mc_maze_small/mc_maze_small_val_tensors.h5")


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    """The tensor file's arrays the tutorial uses (trial, time, neuron)."""
    import h5py

    keys = [
        "train_spikes_heldin",
        "train_spikes_heldout",
        "train_spikes_heldin_forward",
        "train_spikes_heldout_forward",
        "eval_spikes_heldin",
    ]
    with h5py.File(path, "r") as f:
        return {k: np.asarray(f[k]) for k in keys}


def tutorial_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tutorial's arrays: train spikes with forward bins (trial, 180, heldin + heldout),
    eval spikes zero-filled to that shape, their mask (True on observed entries), and the
    eval held-in spikes (trial, 140, heldin)."""
    t = load_tensors(path)
    train_spikes = np.concatenate(
        [
            np.concatenate([t["train_spikes_heldin"], t["train_spikes_heldin_forward"]], axis=1),
            np.concatenate([t["train_spikes_heldout"], t["train_spikes_heldout_forward"]], axis=1),
        ],
        axis=2,
    )
    heldin = t["eval_spikes_heldin"]
    eval_spikes = np.zeros((heldin.shape[0], *train_spikes.shape[1:]))
    masks = np.zeros(eval_spikes.shape, dtype=bool)
    eval_spikes[:, : heldin.shape[1], : heldin.shape[2]] = heldin
    masks[:, : heldin.shape[1], : heldin.shape[2]] = True
    return train_spikes, eval_spikes, masks, heldin


def make_ssm(n_neurons: int, args: argparse.Namespace) -> Any:
    """The tutorial's model: ``ssm.SLDS(N, K, D, ...)``."""
    import ssm

    return ssm.SLDS(
        n_neurons,
        args.K,
        args.D,
        transitions="standard",
        emissions="poisson",
        emission_kwargs=dict(link="log"),
        dynamics_kwargs={"l2_penalty_A": args.l2_penalty_A},
    )


def fit(args: argparse.Namespace) -> None:
    """Fit ssm as the tutorial does; save rates, ELBOs, timings and parameters to ``--out``."""
    train_spikes, eval_spikes, masks, heldin = tutorial_arrays(args.data)
    train_datas = [x.astype(int) for x in train_spikes]
    eval_datas = [x.astype(int) for x in eval_spikes]
    eval_masks = list(masks)

    np.random.seed(args.seed)
    slds = make_ssm(train_datas[0].shape[1], args)
    start = time.perf_counter()
    train_elbos, q_train = slds.fit(
        datas=train_datas,
        method="laplace_em",
        variational_posterior="structured_meanfield",
        num_init_iters=args.num_init_iters,
        num_iters=args.num_iters,
        alpha=0.2,
    )
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    eval_elbos, q_eval = slds.approximate_posterior(
        datas=eval_datas,
        masks=eval_masks,
        method="laplace_em",
        variational_posterior="structured_meanfield",
        num_iters=args.num_iters,
        alpha=0.2,
    )
    posterior_s = time.perf_counter() - start
    train_rates = np.stack(
        [slds.smooth(x, y) for x, y in zip(q_train.mean_continuous_states, train_datas, strict=True)]
    )
    eval_rates = np.stack(
        [
            slds.smooth(x, y, mask=m)
            for x, y, m in zip(q_eval.mean_continuous_states, eval_datas, eval_masks, strict=True)
        ]
    )
    usage = np.mean([ez.mean(0) for ez, _, _ in q_train.discrete_expectations], axis=0)
    np.savez(
        args.out,
        seed=args.seed,
        n_heldin=heldin.shape[2],
        n_bins=heldin.shape[1],
        train_rates=train_rates,
        eval_rates=eval_rates,
        train_elbos=np.asarray(train_elbos),
        eval_elbos=np.asarray(eval_elbos),
        fit_s=fit_s,
        posterior_s=posterior_s,
        A=slds.dynamics.As,
        b=slds.dynamics.bs,
        Q=slds.dynamics.Sigmas,
        C=slds.emissions.Cs,
        d=slds.emissions.ds,
        P=slds.transitions.transition_matrix,
        pi0=slds.init_state_distn.initial_state_distn,
        mu_init=slds.dynamics.mu_init,
        S_init=slds.dynamics.Sigmas_init,
        state_usage=usage,
        train_x=np.stack(q_train.mean_continuous_states),
    )
    print(f"seed {args.seed}: fit {fit_s:.1f} s, eval posterior {posterior_s:.1f} s -> {args.out}")


def ssm_infer(args: argparse.Namespace) -> None:
    """ssm's eval-trial inference (the tutorial's ``approximate_posterior`` call) with the
    parameters of a saved run (ssm's or ``ours``); writes a copy with these eval rates."""
    _, eval_spikes, masks, _ = tutorial_arrays(args.data)
    eval_datas = [x.astype(int) for x in eval_spikes]
    r = dict(np.load(args.run))
    np.random.seed(args.seed)
    slds = make_ssm(eval_spikes.shape[2], args)
    slds.init_state_distn.log_pi0 = np.log(r["pi0"])
    slds.transitions.log_Ps = np.log(r["P"])
    slds.dynamics.As, slds.dynamics.bs, slds.dynamics.Sigmas = r["A"], r["b"], r["Q"]
    slds.dynamics.mu_init, slds.dynamics.Sigmas_init = r["mu_init"], r["S_init"]
    slds.emissions.Cs, slds.emissions.ds = r["C"], r["d"]
    start = time.perf_counter()
    _, q_eval = slds.approximate_posterior(
        datas=eval_datas,
        masks=list(masks),
        method="laplace_em",
        variational_posterior="structured_meanfield",
        num_iters=args.num_iters,
        alpha=0.2,
    )
    r["posterior_s"] = time.perf_counter() - start
    r["eval_rates"] = np.stack(
        [
            slds.smooth(x, y, mask=m)
            for x, y, m in zip(q_eval.mean_continuous_states, eval_datas, masks, strict=True)
        ]
    )
    np.savez(args.out, **r)
    print(f"{args.run} with ssm's eval inference -> {args.out}")


def _slds_fit(r: dict[str, np.ndarray] | None, seed: int) -> SLDSFit:
    """``slds``'s fitting object with the cpu preset, holding a saved run's parameters."""
    from baselines.slds import SLDS
    from baselines.slds.network import SLDSFit, SLDSParams

    cfg = SLDS.make_config("cpu")
    fit = SLDSFit(cfg.n_states, cfg.n_latents, cfg.l2_penalty_A, cfg.l2_penalty_b, cfg, seed)
    if r is not None:
        fit.params = SLDSParams(
            r["pi0"], r["P"], r["A"], r["b"], r["Q"], r["mu_init"][0], r["S_init"][0],
            r["C"][0], r["d"][0],
        )
    return fit


def ours(args: argparse.Namespace) -> None:
    """Fit ``slds`` (cpu preset, the same data) and save its run in this script's layout."""
    from nlbsuite.adapter import cpu_threads

    train_spikes, eval_spikes, masks, heldin = tutorial_arrays(args.data)
    fit = _slds_fit(None, args.seed)
    with cpu_threads(1):
        start = time.perf_counter()
        fit.fit(train_spikes.astype(np.float64))
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        eval_x = fit.infer(eval_spikes, masks)
        posterior_s = time.perf_counter() - start
    p, k = fit.params, fit.k
    np.savez(
        args.out,
        seed=args.seed,
        n_heldin=heldin.shape[2],
        n_bins=heldin.shape[1],
        train_rates=fit.rates(fit.train_states),
        eval_rates=fit.rates(eval_x),
        train_elbos=np.asarray(fit.log_likelihoods),
        eval_elbos=np.zeros(0),
        fit_s=fit_s,
        posterior_s=posterior_s,
        A=p.A,
        b=p.b,
        Q=p.Q,
        C=p.C[None],
        d=p.d[None],
        P=p.trans,
        pi0=p.pi,
        mu_init=np.tile(p.mu0, (k, 1)),
        S_init=np.tile(p.S0, (k, 1, 1)),
        state_usage=fit.last_q.mean(axis=(0, 1)),
        train_x=fit.train_states,
    )
    print(f"slds seed {args.seed}: fit {fit_s:.1f} s, eval inference {posterior_s:.1f} s")


def cross(args: argparse.Namespace) -> None:
    """``slds``'s eval-trial inference with the parameters of a saved run; writes a copy."""
    from nlbsuite.adapter import cpu_threads

    _, eval_spikes, masks, _ = tutorial_arrays(args.data)
    r = dict(np.load(args.run))
    fit = _slds_fit(r, int(r["seed"]))
    with cpu_threads(1):
        start = time.perf_counter()
        r["eval_rates"] = fit.rates(fit.infer(eval_spikes, masks))
        r["posterior_s"] = time.perf_counter() - start
    np.savez(args.out, **r)
    print(f"{args.run} with slds's eval inference -> {args.out}")


def score(args: argparse.Namespace) -> None:
    """co-bps (nlbsuite's scorer) and summaries of each saved ssm run."""
    from nlbsuite.data import Rates
    from nlbsuite.datasets import load_dataset
    from nlbsuite.scoring import bits_per_spike, evaluate

    data = load_dataset(path=args.data)
    train_spikes = np.concatenate([data.train_spikes_heldin, data.train_spikes_heldout], axis=2)
    for path in args.runs:
        r = np.load(path)
        n_in, n_bins = int(r["n_heldin"]), int(r["n_bins"])
        rates = Rates.from_full(r["train_rates"], r["eval_rates"], n_in, n_bins)
        metrics = evaluate(data, rates)
        train_bps = bits_per_spike(r["train_rates"][:, :n_bins, n_in:], train_spikes[..., n_in:])
        radius = [float(np.abs(np.linalg.eigvals(a)).max()) for a in r["A"]]
        print(
            f"{path}: seed {int(r['seed'])} co-bps {metrics['co-bps']:.4f}"
            f" | train held-out bps {train_bps:.4f}"
            f" | fit {float(r['fit_s']):.1f} s + eval posterior {float(r['posterior_s']):.1f} s"
            f" | ELBO init {r['train_elbos'][0]:.0f} last {r['train_elbos'][-1]:.0f}"
            f" | usage {np.round(r['state_usage'], 3).tolist()}"
            f" | rho(A) {np.round(radius, 3).tolist()}"
            f" | |C|_F {np.linalg.norm(r['C']):.2f} mean d {r['d'].mean():.3f}"
        )


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit ssm (throwaway env with ssm)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--data", type=Path, default=DATA)
    f.add_argument("--K", type=int, default=3)
    f.add_argument("--D", type=int, default=15)
    f.add_argument("--l2-penalty-A", dest="l2_penalty_A", type=float, default=3000.0)
    f.add_argument("--num-init-iters", type=int, default=25)
    f.add_argument("--num-iters", type=int, default=25)
    f.set_defaults(func=fit)
    for name, func, env in (
        ("ssm-infer", ssm_infer, "ssm's eval inference with a saved run's parameters (ssm env)"),
        ("cross", cross, "slds's eval inference with a saved run's parameters (project env)"),
    ):
        c = sub.add_parser(name, help=env)
        c.add_argument("run", type=Path)
        c.add_argument("--out", type=Path, required=True)
        c.add_argument("--seed", type=int, default=0)
        c.add_argument("--data", type=Path, default=DATA)
        c.add_argument("--K", type=int, default=3)
        c.add_argument("--D", type=int, default=15)
        c.add_argument("--l2-penalty-A", dest="l2_penalty_A", type=float, default=3000.0)
        c.add_argument("--num-iters", type=int, default=25)
        c.set_defaults(func=func)
    o = sub.add_parser("ours", help="fit slds's cpu preset on the same data (project env)")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--out", type=Path, required=True)
    o.add_argument("--data", type=Path, default=DATA)
    o.set_defaults(func=ours)
    s = sub.add_parser("score", help="score saved runs with nlbsuite (project env)")
    s.add_argument("runs", nargs="+", type=Path)
    s.add_argument("--data", type=Path, default=DATA)
    s.set_defaults(func=score)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
