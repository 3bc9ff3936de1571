"""Seed models (issue 18): fit seconds and co-bps / ceiling of a preset on Lorenz, the latent
SDE's prior vs posterior prediction, and the low-rank RNN's variability check.

    PYTHONPATH=. python benchmarks/bench_seed_models.py --model latent_sde --preset ci
    PYTHONPATH=. python benchmarks/bench_seed_models.py --model lowrank_rnn --preset ci \
        --variability docs/figures/lowrank_rnn_variability_lorenz.png
    PYTHONPATH=. python benchmarks/bench_seed_models.py --model latent_sde --preset cpu \
        --data ../shared/data/mc_maze_small/mc_maze_small_val_tensors.h5
    PYTHONPATH=. python benchmarks/bench_seed_models.py --model lowrank_rnn \
        --fitted leaderboard/results/mc_maze_small__val__lowrank_rnn__cpu-<hash>__seed0.json \
        --data ../shared/data/mc_maze_small/mc_maze_small_val_tensors.h5 --variability F.png

Each run fits one model on the default Lorenz val phase (seed 0 data; ``--data``: a val
tensor file in nlb_tools' layout instead, ``--bin`` to rebin it) with one torch thread
(``num_threads`` of the preset), times ``fit`` and prints the co-bps, its ceiling fraction (Lorenz)
and the 1-minute load average at start and end (the machine may be shared: state it with the
numbers). The latent SDE is scored with both ``predict_with`` settings of the same fit;
LangevinFlow gets its latent-motion probe on the train trials; ``--variability [PNG]`` runs
the low-rank RNN's variability check (generated vs held-out real trials) and saves its figure.
``--fitted RECORD`` scores the fit saved with a result record (its JSON) instead of fitting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np

from nlbsuite.lorenz import make_lorenz
from nlbsuite.registry import get_model_class
from nlbsuite.scoring.evaluator import evaluate

KEYS = ("co-bps", "ceiling co-bps", "co-bps / ceiling", "rate R2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--preset", default="ci")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=json")
    parser.add_argument("--data", help="val tensor file (nlb_tools h5 layout) instead of Lorenz")
    parser.add_argument("--bin", type=int, help="rebin --data to this width in ms")
    parser.add_argument("--variability", nargs="?", const="", metavar="PNG")
    parser.add_argument("--fitted", metavar="RECORD", help="a result record whose fit to score")
    args = parser.parse_args()
    if args.data:
        from nlbsuite.datasets import load_dataset

        data = load_dataset(None, path=args.data, bin_width_ms=args.bin)
    else:
        data = make_lorenz("val")
    cls = get_model_class(args.model)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    load0 = os.getloadavg()[0]
    preset = args.preset
    if args.fitted:
        from nlbsuite.results import load_record
        from nlbsuite.runner import load_run_model

        record = load_record(args.fitted)
        assert record.model == args.model, f"{args.fitted}: a {record.model} record"
        model, preset, fit_s = load_run_model(args.fitted), record.preset, float("nan")
    else:
        model = cls(cls.make_config(args.preset, overrides), seed=args.seed)
        start = time.perf_counter()
        model.fit(data.model_input())
        fit_s = time.perf_counter() - start
    out = {
        "model": args.model,
        "preset": preset,
        "fitted": args.fitted,
        "data": data.dataset,
        "bin_ms": data.bin_width_ms,
        "seed": model.seed,
        "overrides": overrides,
        "fit_s": round(fit_s, 1),
        "load_start": load0,
        "load_end": os.getloadavg()[0],
    }
    metrics = evaluate(data, model.predict(data.model_input()))
    out["scores"] = {k: metrics.get(k) for k in KEYS}
    if args.model == "latent_sde":
        other = "prior" if model.cfg.predict_with == "posterior" else "posterior"
        model.config = dataclasses.replace(model.cfg, predict_with=other)
        m2 = evaluate(data, model.predict(data.model_input()))
        out[f"scores_predict_with_{other}"] = {k: m2.get(k) for k in KEYS}
    if args.model == "langevin_flow":
        out["latent_motion"] = model.latent_motion(data.train_spikes_heldin)
    if args.variability is not None:
        from baselines.lowrank_rnn import coarsen, compare_variability

        # Held-out real trials: the eval trials (held-in and held-out neurons, observed window).
        assert data.target is not None
        real = np.concatenate([data.eval_spikes_heldin, data.target.eval_spikes_heldout], 2)
        real = coarsen(real, model.factor)
        gen = model.generate(real.shape[0], n_steps=real.shape[1])
        out["variability"] = compare_variability(gen.spikes, real)
        if args.variability:
            plot_variability(gen.spikes, real, args.variability, f"{data.dataset}, {preset}")
    print(json.dumps(out, default=float))


def plot_variability(generated: np.ndarray, real: np.ndarray, path: str, title: str) -> None:
    """Two scatter panels, generated vs real: per-neuron Fano factor, pairwise correlations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baselines.lowrank_rnn import trial_variability
    from nlbsuite.fileio import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0), dpi=100)
    for ax, g, r, name in zip(
        axes,
        trial_variability(generated),
        trial_variability(real),
        ("Fano factor", "count corr."),
        strict=True,
    ):
        ok = np.isfinite(g) & np.isfinite(r)
        ax.scatter(r[ok], g[ok], s=6 if name == "Fano factor" else 2, alpha=0.6)
        lo, hi = min(r[ok].min(), g[ok].min()), max(r[ok].max(), g[ok].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"{name}, held-out real trials")
        ax.set_ylabel(f"{name}, generated trials")
    fig.suptitle(f"lowrank_rnn variability check ({title})", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
