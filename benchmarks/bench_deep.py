"""Deep baselines (NDT, STNDT, LFADS) at the ``paper`` preset on an MC_Maze-sized synthetic
session: parameter counts and fit time per epoch, from a few timed optimizer steps.

    PYTHONPATH=. python benchmarks/bench_deep.py [--steps 3] [--threads 1] [--device cpu]

The session is Lorenz-generated data in MC_Maze's 5 ms layout (val phase: 1725 train and
575 eval trials, 140 + 40 forward bins, 137 held-in + 45 held-out neurons; MC_Maze has 1721
and 574 trials). Each model is
fitted on ``batch_size x steps`` of its trials for one epoch (no validation), the step time
is the fit time (wall and process CPU) over the steps (the first step's start-up included), and the epoch time extrapolates it to the model's steps per
epoch on the full session (``ceil(0.9 * 1721 / batch_size)`` with the 10% validation
split; NDT/STNDT at their ``paper`` batch 64, LFADS at 256). Nothing is recorded; timings on
a shared machine are only comparable within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import torch

from baselines.lfads import LFADS
from baselines.ndt import NDT
from baselines.stndt import STNDT
from nlbsuite.data import PhaseData
from nlbsuite.lorenz import LorenzSpec, make_lorenz

N_TRAIN, N_EVAL = 1721, 574
MAZE = LorenzSpec(
    n_conditions=115, trials_per_condition=21, trial_ms=700, forward_ms=200, bin_width_ms=5,
    n_neurons=182, heldout_fraction=45 / 182, base_rate_hz=12.0, val_fraction=5 / 21,
    test_fraction=1 / 21,
)  # fmt: skip


def maze_sized() -> PhaseData:
    return make_lorenz(phase="val", seed=0, size=MAZE)


def subset(data: PhaseData, n: int) -> PhaseData:
    """The first ``n`` train trials (model inputs only)."""
    inp = data.model_input()
    return dataclasses.replace(
        inp,
        train_spikes_heldin=inp.train_spikes_heldin[:n],
        train_spikes_heldout=inp.train_spikes_heldout[:n],
        train_spikes_heldin_forward=inp.train_spikes_heldin_forward[:n],
        train_spikes_heldout_forward=inp.train_spikes_heldout_forward[:n],
        eval_spikes_heldin=inp.eval_spikes_heldin[:2],
        train_behavior=None,
    )


def time_model(cls: type, data: PhaseData, steps: int, threads: int, device: str) -> dict:
    base = cls.make_config("paper")
    batch = base.batch_size
    over = {"valid_fraction": 0.0, "num_threads": threads, "device": device}
    if cls is LFADS:
        over.update(epochs=1)
    else:
        over.update(n_steps=steps, warmup_steps=1)
    model = cls(cls.make_config("paper", over), seed=0)
    part = subset(data, batch * steps)
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(part)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    per_epoch_steps = math.ceil(0.9 * N_TRAIN / batch)
    return {
        "model": cls.info.name,
        "parameters": model.n_parameters(),
        "batch": batch,
        "step_s": seconds / steps,
        "step_cpu_s": cpu_seconds / steps,
        "steps_per_epoch": per_epoch_steps,
        "epoch_s": seconds / steps * per_epoch_steps,
        "epoch_cpu_s": cpu_seconds / steps * per_epoch_steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    data = maze_sized()
    print(
        f"synthetic MC_Maze-sized session: train {data.train_spikes_heldin.shape}, eval "
        f"{data.eval_spikes_heldin.shape}, forward {data.n_forward} bins, "
        f"{data.n_heldin}+{data.n_heldout} neurons; device {args.device}, "
        f"threads {args.threads}, torch {torch.__version__}"
    )
    print("wall and process CPU seconds (CPU time is what a loaded machine does not inflate)")
    print("model   parameters  batch  wall s/step  cpu s/step  steps/epoch  wall s/epoch  cpu s/epoch")
    for cls in (NDT, STNDT, LFADS):
        r = time_model(cls, data, args.steps, args.threads, args.device)
        print(
            f"{r['model']:<7} {r['parameters']:>10,}  {r['batch']:>5}  {r['step_s']:11.2f}  "
            f"{r['step_cpu_s']:10.2f}  {r['steps_per_epoch']:>11}  {r['epoch_s']:12.1f}  "
            f"{r['epoch_cpu_s']:11.1f}"
        )


if __name__ == "__main__":
    main()
