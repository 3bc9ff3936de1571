"""Seed models (issue 18): fit seconds and co-bps / ceiling of a preset on Lorenz, the latent
SDE's prior vs posterior prediction, and the low-rank RNN's variability check.

    PYTHONPATH=. python benchmarks/bench_seed_models.py --model latent_sde --preset ci
    PYTHONPATH=. python benchmarks/bench_seed_models.py --model lowrank_rnn --preset ci --variability

Each run fits one model on the default Lorenz val phase (seed 0 data) with one torch thread
(``num_threads`` of the preset), times ``fit`` and prints the co-bps, its ceiling fraction and
the 1-minute load average at start and end (the machine may be shared: state it with the
numbers). The latent SDE is scored with both ``predict_with`` settings of the same fit;
LangevinFlow gets its latent-motion probe on the train trials.
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
    parser.add_argument("--variability", action="store_true")
    args = parser.parse_args()
    data = make_lorenz("val")
    cls = get_model_class(args.model)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    model = cls(cls.make_config(args.preset, overrides), seed=args.seed)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    model.fit(data.model_input())
    fit_s = time.perf_counter() - start
    out = {"model": args.model, "preset": args.preset, "seed": args.seed, "overrides": overrides,
           "fit_s": round(fit_s, 1), "load_start": load0, "load_end": os.getloadavg()[0]}
    metrics = evaluate(data, model.predict(data.model_input()))
    out["scores"] = {k: metrics.get(k) for k in KEYS}
    if args.model == "latent_sde":
        other = "prior" if model.cfg.predict_with == "posterior" else "posterior"
        model.config = dataclasses.replace(model.cfg, predict_with=other)
        m2 = evaluate(data, model.predict(data.model_input()))
        out[f"scores_predict_with_{other}"] = {k: m2.get(k) for k in KEYS}
    if args.model == "langevin_flow":
        out["latent_motion"] = model.latent_motion(data.train_spikes_heldin)
    if args.variability:
        from baselines.lowrank_rnn import coarsen, compare_variability

        # Held-out real trials: the eval trials (held-in and held-out neurons, observed window).
        assert data.target is not None
        real = np.concatenate([data.eval_spikes_heldin, data.target.eval_spikes_heldout], 2)
        real = coarsen(real, model.factor)
        gen = model.generate(real.shape[0], n_steps=real.shape[1])
        out["variability"] = compare_variability(gen.spikes, real)
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
