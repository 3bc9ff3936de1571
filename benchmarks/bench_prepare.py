"""Prepare an NLB dataset: nlb_tools 0.0.4 vs nlbsuite, side by side in one run.

One synthetic MC_Maze-like session (train + test NWB, written through pynwb) is prepared
by both, each in a fresh process: load + resample + train/eval input + eval target with
PSTHs (val phase, 5 ms). Printed: wall time, time ratio, peak resident memory, the
cached reload of nlbsuite, and that the tensors agree. nlb_tools runs in the oracle venv
(pandas < 3): ``$NLBSUITE_ORACLE_PYTHON``, else ``.venv-oracle/bin/python`` of this
checkout or of the main checkout.

    python benchmarks/bench_prepare.py                       # 1000 trials x 200 neurons
    python benchmarks/bench_prepare.py --trials 250 500 1000 --neurons 200   # scaling
    python benchmarks/bench_prepare.py --skip-nlb-tools --trials 2900 --neurons 182
    python benchmarks/bench_prepare.py --whole-process --trials 600 --neurons 120 --repeats 5

``--whole-process`` times what a user runs, as whole processes (interpreter start-up, imports,
NWB read, tensors, the three exported h5 files), interleaved, best of ``--repeats``:
``nlbsuite prepare DATASET --nwb ... --export DIR`` (fresh cache folder each time, so it
builds) against nlb_tools' equivalent script (NWBDataset, resample, the three
``make_*_tensors`` with ``save_path``); then checks the exported files hold the same keys,
dtypes and values.

BLAS runs single-threaded in both (nlb_tools still smooths with a 2-process Pool).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET = os.environ.get("NLBSUITE_BENCH_LAYOUT", "mc_maze")  # set by --layout
BIN_MS = 5


def _oracle_python() -> str | None:
    env = os.environ.get("NLBSUITE_ORACLE_PYTHON")
    candidates = [env] if env else []
    candidates += [str(ROOT / ".venv-oracle/bin/python"), "/work/main/.venv-oracle/bin/python"]
    return next((c for c in candidates if c and Path(c).exists()), None)


def _peak_mb() -> float:
    """Peak resident memory of this process image: VmHWM (ru_maxrss would also count the
    parent's memory from before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------------------
# Workers (run in their own process)
# ----------------------------------------------------------------------------------------


def worker_nlb_tools(folder: str, out: str) -> dict:
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    from nlb_tools.make_tensors import (
        make_eval_input_tensors,
        make_eval_target_tensors,
        make_train_input_tensors,
    )
    from nlb_tools.nwb_interface import NWBDataset

    start = time.perf_counter()
    ds = NWBDataset(folder)
    ds.resample(BIN_MS)
    t_load = time.perf_counter() - start
    train = make_train_input_tensors(
        ds, DATASET, "train", save_file=False, include_behavior=True, include_forward_pred=True
    )
    evals = make_eval_input_tensors(ds, DATASET, "val", save_file=False)
    t_inputs = time.perf_counter() - start
    target = make_eval_target_tensors(
        ds, DATASET, "train", "val", save_file=False, include_psth=True
    )
    total = time.perf_counter() - start
    peak = _peak_mb()  # before pickling (which copies arrays)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(out, "wb") as f:
        pickle.dump((train, evals, target), f)
    return {
        "seconds": total,
        "load_resample_s": t_load,
        "inputs_s": t_inputs - t_load,
        "target_psth_s": total - t_inputs,
        "peak_mb": peak,
        "pool_child_peak_mb": children,
    }


def worker_nlb_tools_export(folder: str, out: str) -> dict:
    """nlb_tools' prepare-and-save script: what a user of nlb_tools runs to get the files."""
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    from nlb_tools.make_tensors import (
        make_eval_input_tensors,
        make_eval_target_tensors,
        make_train_input_tensors,
    )
    from nlb_tools.nwb_interface import NWBDataset

    ds = NWBDataset(folder)
    ds.resample(BIN_MS)
    make_train_input_tensors(
        ds,
        DATASET,
        "train",
        save_path=f"{out}/train_input.h5",
        include_behavior=True,
        include_forward_pred=True,
    )
    make_eval_input_tensors(ds, DATASET, "val", save_path=f"{out}/eval_input.h5")
    make_eval_target_tensors(
        ds, DATASET, "train", "val", save_path=f"{out}/eval_target.h5", include_psth=True
    )
    return {}


def worker_generate(folder: str, n_trials: str, n_neurons: str, n_conditions: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic

    spec = SyntheticSpec(
        layout=DATASET,
        n_trials=int(n_trials),
        n_neurons=int(n_neurons),
        n_conditions=int(n_conditions),
        seed=0,
        truth=False,
    )
    return {"paths": [str(p) for p in write_synthetic(folder, spec)]}


def worker_nlbsuite(folder: str, out: str, cache_dir: str, use_cache: bool) -> dict:
    os.environ["NLBSUITE_CACHE"] = cache_dir
    sys.path.insert(0, str(ROOT))
    import scipy.signal  # noqa: F401  imported before timing, as nlb_tools' modules are

    from nlbsuite.nlb import load_nlb

    paths = sorted(Path(folder).glob("*.nwb"))
    start = time.perf_counter()
    data = load_nlb(DATASET, "val", BIN_MS, nwb_paths=paths, use_cache=use_cache)
    total = time.perf_counter() - start
    peak = _peak_mb()
    if out:
        t = data.target
        with open(out, "wb") as f:
            pickle.dump(
                {
                    "train_spikes_heldin": data.train_spikes_heldin,
                    "eval_spikes_heldout": t.eval_spikes_heldout,
                    "train_behavior": data.train_behavior,
                    "psth": t.psth,
                    "eval_cond_idx": t.eval_cond_idx,
                },
                f,
            )
    return {"seconds": total, "peak_mb": peak}


# ----------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------


def _run(python: str, args: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [python, __file__, "--worker", *args], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def _agree(ours_pkl: str, ref_pkl: str) -> str:
    import numpy as np

    with open(ours_pkl, "rb") as f:
        ours = pickle.load(f)
    with open(ref_pkl, "rb") as f:
        train, _, target = pickle.load(f)
    body = target[DATASET]
    checks = {
        "train_spikes_heldin": np.array_equal(
            ours["train_spikes_heldin"],
            train["train_spikes_heldin"].astype(np.float32),
            equal_nan=True,
        ),
        "eval_spikes_heldout": np.array_equal(
            ours["eval_spikes_heldout"],
            body["eval_spikes_heldout"].astype(np.float32),
            equal_nan=True,
        ),
        "train_behavior": np.allclose(
            ours["train_behavior"], train["train_behavior"], rtol=1e-6, atol=1e-12, equal_nan=True
        ),
    }
    if "psth" in body:
        checks["psth"] = np.allclose(
            ours["psth"], body["psth"], rtol=1e-6, atol=1e-12, equal_nan=True
        )
        checks["eval_cond_idx"] = all(
            np.array_equal(a, b)
            for a, b in zip(ours["eval_cond_idx"], body["eval_cond_idx"], strict=True)
        )
    bad = [k for k, ok in checks.items() if not ok]
    return "identical (spikes exact, floats 1e-6)" if not bad else f"DIFFER: {', '.join(bad)}"


def bench(
    n_trials: int, n_neurons: int, n_conditions: int, workdir: Path, skip_nlb_tools: bool
) -> dict:
    folder = str(workdir / f"s{n_trials}x{n_neurons}x{n_conditions}")
    t0 = time.perf_counter()
    _run(sys.executable, ["generate", folder, str(n_trials), str(n_neurons), str(n_conditions)])
    paths = sorted(Path(folder).rglob("*.nwb"))
    folder = str(paths[0].parent)
    gen_s = time.perf_counter() - t0
    import h5py

    n_ms = 0
    n_spikes = 0
    for p in paths:
        with h5py.File(p, "r") as f:
            n_spikes += f["units/spike_times"].shape[0]
            n_ms += round(f["units/obs_intervals"][()].max() * 1000)
    row = {
        "trials": n_trials,
        "neurons": n_neurons,
        "conditions": n_conditions,
        "recording_ms": n_ms,
        "spikes": n_spikes,
        "generate_s": gen_s,
    }
    cache = str(workdir / f"cache{n_trials}x{n_neurons}")
    ours_pkl = str(workdir / "ours.pkl")
    row["nlbsuite"] = _run(sys.executable, ["nlbsuite", folder, ours_pkl, cache, "0"])
    _run(sys.executable, ["nlbsuite", folder, "", cache, "1"])  # fills the cache
    row["cached"] = _run(sys.executable, ["nlbsuite", folder, "", cache, "1"])
    oracle = None if skip_nlb_tools else _oracle_python()
    if oracle:
        ref_pkl = str(workdir / "ref.pkl")
        row["nlb_tools"] = _run(oracle, ["nlb_tools", folder, ref_pkl])
        row["ratio"] = row["nlb_tools"]["seconds"] / row["nlbsuite"]["seconds"]
        row["agree"] = _agree(ours_pkl, ref_pkl)
    return row


# ----------------------------------------------------------------------------------------
# Whole process: start-up + read + tensors + export, as a user runs it
# ----------------------------------------------------------------------------------------


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{proc.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def _same_files(ours: Path, ref: Path) -> str:
    """Whether two export folders hold the same h5 keys, dtypes and values."""
    import h5py
    import numpy as np

    def walk(group: h5py.Group, prefix: str = "") -> dict[str, h5py.Dataset]:
        out = {}
        for key, item in group.items():
            if isinstance(item, h5py.Group):
                out.update(walk(item, f"{prefix}{key}/"))
            else:
                out[prefix + key] = item
        return out

    bad = []
    for name in ("train_input.h5", "eval_input.h5", "eval_target.h5"):
        with h5py.File(ours / name, "r") as fo, h5py.File(ref / name, "r") as fr:
            a, b = walk(fo), walk(fr)
            if sorted(a) != sorted(b):
                bad.append(f"{name} keys")
                continue
            for key, dset in b.items():
                x, y = a[key][()], dset[()]
                same = a[key].dtype == dset.dtype and (
                    all(np.array_equal(u, v) for u, v in zip(x, y, strict=True))
                    if dset.dtype == object
                    else np.array_equal(x, y, equal_nan=True)
                )
                if not same:
                    bad.append(f"{name}:{key}")
    return "identical (keys, dtypes, values)" if not bad else f"DIFFER: {', '.join(bad)}"


def bench_whole_process(n_trials: int, n_neurons: int, n_conditions: int, repeats: int) -> dict:
    """Best-of-``repeats`` wall seconds of each whole process, runs interleaved."""
    oracle = _oracle_python()
    if oracle is None:
        raise SystemExit("whole-process mode needs nlb_tools' venv (see the module docstring)")
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        work = Path(tmp)
        folder = work / "session"
        _run(
            sys.executable,
            ["generate", str(folder), str(n_trials), str(n_neurons), str(n_conditions)],
        )
        paths = sorted(str(p) for p in folder.rglob("*.nwb"))
        times: dict[str, list[tuple[float, float]]] = {"nlbsuite": [], "nlb_tools": []}
        for rep in range(repeats):
            ref = work / f"ref{rep}"
            ref.mkdir()
            times["nlb_tools"].append(
                _timed(
                    [
                        oracle,
                        __file__,
                        "--worker",
                        "nlb_tools_export",
                        str(Path(paths[0]).parent),
                        str(ref),
                    ],
                    env,
                )
            )
            ours = work / f"ours{rep}"
            cmd = [sys.executable, "-m", "nlbsuite", "prepare", DATASET, "--phase", "val"]
            cmd += ["--bin", str(BIN_MS), "--nwb", *paths, "--export", str(ours)]
            times["nlbsuite"].append(
                _timed(cmd, {**env, "NLBSUITE_CACHE": str(work / f"cache{rep}")})
            )
        agree = _same_files(work / "ours0", work / "ref0")
    best = {k: min(t[0] for t in v) for k, v in times.items()}
    best_cpu = {k: min(t[1] for t in v) for k, v in times.items()}
    return {
        "trials": n_trials,
        "neurons": n_neurons,
        "times": times,
        "best": best,
        "best_cpu": best_cpu,
        "ratio": best["nlb_tools"] / best["nlbsuite"],
        "cpu_ratio": best_cpu["nlb_tools"] / best_cpu["nlbsuite"],
        "agree": agree,
    }


def _print_whole(row: dict) -> None:
    print(
        f"\n== whole process, {row['trials']} trials x {row['neurons']} neurons ({DATASET}, {BIN_MS} ms, val)"
    )
    for name in ("nlbsuite", "nlb_tools"):
        runs = ", ".join(f"{t:.2f}" for t, _ in row["times"][name])
        print(
            f"{name:9s}: best {row['best'][name]:6.2f} s wall, {row['best_cpu'][name]:6.2f} s CPU"
            f"   (wall runs: {runs})"
        )
    print(
        f"ratio    : {row['ratio']:6.1f} x wall, {row['cpu_ratio']:.1f} x CPU   "
        f"exported files {row['agree']}"
    )


def _print(row: dict) -> None:
    print(
        f"\n== {row['trials']} trials x {row['neurons']} neurons, {row['conditions']} conditions: "
        f"{row['recording_ms'] / 1e6:.2f} M ms, {row['spikes'] / 1e6:.2f} M spikes "
        f"(generated in {row['generate_s']:.1f} s)"
    )
    ns = row["nlbsuite"]
    print(f"nlbsuite  prepare : {ns['seconds']:7.2f} s   peak RSS {ns['peak_mb']:7.0f} MB")
    c = row["cached"]
    print(
        f"nlbsuite  cached  : {c['seconds']:7.3f} s   (whole process incl. imports {c['process_s']:.2f} s)"
    )
    if "nlb_tools" in row:
        nt = row["nlb_tools"]
        print(
            f"nlb_tools prepare : {nt['seconds']:7.2f} s   peak RSS {nt['peak_mb']:7.0f} MB "
            f"(+ Pool worker peak {nt['pool_child_peak_mb']:.0f} MB); load+resample "
            f"{nt['load_resample_s']:.1f} s, inputs {nt['inputs_s']:.1f} s, target+PSTH {nt['target_psth_s']:.1f} s"
        )
        print(f"speed-up          : {row['ratio']:7.1f} x   tensors {row['agree']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, nargs="+", default=[1000])
    parser.add_argument("--neurons", type=int, nargs="+", default=[200])
    parser.add_argument("--conditions", type=int, default=27, help="mc_maze layout only")
    parser.add_argument(
        "--layout", default="mc_maze", choices=["mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg"]
    )
    parser.add_argument("--skip-nlb-tools", action="store_true")
    parser.add_argument(
        "--whole-process",
        action="store_true",
        help="time the whole nlbsuite prepare --export process against nlb_tools' script",
    )
    parser.add_argument("--repeats", type=int, default=5, help="whole-process runs of each")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "nlb_tools":
            print(json.dumps(worker_nlb_tools(*rest)))
        elif kind == "nlb_tools_export":
            print(json.dumps(worker_nlb_tools_export(*rest)))
        elif kind == "generate":
            print(json.dumps(worker_generate(*rest)))
        else:
            folder, out, cache, use_cache = rest
            print(json.dumps(worker_nlbsuite(folder, out, cache, use_cache == "1")))
        return
    global DATASET
    DATASET = args.layout
    os.environ["NLBSUITE_BENCH_LAYOUT"] = args.layout
    rows = []
    if args.whole_process:
        for n_trials in args.trials:
            for n_neurons in args.neurons:
                row = bench_whole_process(n_trials, n_neurons, args.conditions, args.repeats)
                _print_whole(row)
                rows.append(row)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        for n_trials in args.trials:
            for n_neurons in args.neurons:
                row = bench(n_trials, n_neurons, args.conditions, Path(tmp), args.skip_nlb_tools)
                _print(row)
                rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
