"""The same nlb_tools script on nlb_tools 0.0.4 and on ``nlbsuite.compat``, side by side.

One synthetic MC_Maze-like session (the data-speed case: 600 trials x 120 neurons) goes
through the usual preparation script, identical text except for the imports, each in a
fresh process: ``NWBDataset`` + ``resample(5)`` + ``make_train_input_tensors`` (train + val,
behaviour, forward) + ``make_eval_input_tensors`` (val) + ``make_eval_target_tensors``
(PSTHs). Printed: wall time, peak resident memory, and whether the dicts agree. nlb_tools
runs in the oracle venv (see bench_prepare.py).

    python benchmarks/bench_compat.py [--trials 600] [--neurons 120]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_prepare import ROOT, _oracle_python, _peak_mb, worker_generate

BIN_MS = 5


def worker_script(kind: str, folder: str, out: str) -> dict:
    """The preparation script; ``kind`` picks the imports (nlb_tools or nlbsuite.compat)."""
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    if kind == "nlb_tools":
        from nlb_tools.make_tensors import (
            make_eval_input_tensors,
            make_eval_target_tensors,
            make_train_input_tensors,
        )
        from nlb_tools.nwb_interface import NWBDataset
    else:
        sys.path.insert(0, str(ROOT))
        import scipy.signal  # noqa: F401  imported before timing, as nlb_tools' modules are

        from nlbsuite.compat import (
            NWBDataset,
            make_eval_input_tensors,
            make_eval_target_tensors,
            make_train_input_tensors,
        )
    start = time.perf_counter()
    ds = NWBDataset(folder)
    ds.resample(BIN_MS)
    t_load = time.perf_counter() - start
    train = make_train_input_tensors(
        ds, "mc_maze", ["train", "val"], save_file=False, include_behavior=True,
        include_forward_pred=True,
    )  # fmt: skip
    evals = make_eval_input_tensors(ds, "mc_maze", "val", save_file=False)
    target = make_eval_target_tensors(ds, "mc_maze", "train", "val", save_file=False,
                                      include_psth=True)  # fmt: skip
    total = time.perf_counter() - start
    peak = _peak_mb()
    with open(out, "wb") as f:
        pickle.dump((train, evals, target), f)
    return {"seconds": total, "load_resample_s": t_load, "peak_mb": peak}


def _run(python: str, args: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [python, __file__, "--worker", *args], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _agree(ours_pkl: str, ref_pkl: str) -> str:
    import numpy as np

    with open(ours_pkl, "rb") as f:
        ours = pickle.load(f)
    with open(ref_pkl, "rb") as f:
        ref = pickle.load(f)
    bad = []

    def walk(a: object, b: object, where: str) -> None:
        if isinstance(b, dict):
            if list(a) != list(b):
                bad.append(f"{where} keys")
            for k in b:
                walk(a[k], b[k], f"{where}/{k}")
        elif isinstance(b, list) or (isinstance(b, np.ndarray) and b.dtype == object):
            if not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)):
                bad.append(where)
        elif not np.allclose(a, b, rtol=1e-6, atol=1e-12, equal_nan=True):
            bad.append(where)

    for name, a, b in zip(("train", "eval", "target"), ours, ref, strict=True):
        walk(a, b, name)
    return "identical (keys, NaN positions, values 1e-6)" if not bad else f"DIFFER: {bad}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--neurons", type=int, default=120)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "generate":
            print(json.dumps(worker_generate(*rest)))
        else:
            print(json.dumps(worker_script(kind, *rest)))
        return
    oracle = _oracle_python()
    if oracle is None:
        raise SystemExit("nlb_tools' oracle venv not found (see bench_prepare.py)")
    with tempfile.TemporaryDirectory(prefix="bench_compat_") as tmp:
        folder = str(Path(tmp) / "session")
        _run(sys.executable, ["generate", folder, str(args.trials), str(args.neurons), "27"])
        folder = str(sorted(Path(folder).rglob("*.nwb"))[0].parent)
        ours = _run(sys.executable, ["compat", folder, f"{tmp}/ours.pkl"])
        ref = _run(oracle, ["nlb_tools", folder, f"{tmp}/ref.pkl"])
        agree = _agree(f"{tmp}/ours.pkl", f"{tmp}/ref.pkl")
    print(f"== {args.trials} trials x {args.neurons} neurons (MC_Maze layout, 5 ms, val phase)")
    print("| | wall time | of which NWBDataset + resample | peak RSS |")
    print("|---|---|---|---|")
    for name, r in (("nlb_tools 0.0.4", ref), ("nlbsuite.compat", ours)):
        print(
            f"| {name} | {r['seconds']:.2f} s | {r['load_resample_s']:.2f} s "
            f"| {r['peak_mb']:.0f} MB |"
        )
    print(
        f"speed-up {ref['seconds'] / ours['seconds']:.1f}x, memory "
        f"{ref['peak_mb'] / ours['peak_mb']:.1f}x less; outputs {agree}"
    )


if __name__ == "__main__":
    main()
