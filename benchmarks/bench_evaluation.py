"""Speed of nlbsuite's scorer against nlb_tools' ``evaluate``, side by side, at full NLB sizes.

For each dataset layout a synthetic eval target and submission of the NLB test-phase size
(e.g. MC_Maze: 2295 train and 574 eval trials x 140 bins x 182 neurons) are scored by both
scorers in the same process with the same BLAS thread count: in memory (dicts), from the
same plain h5 files (nlbsuite's writers, no compression) and from the same gzip h5 files
(target by nlb_tools' own ``save_to_h5``, which always compresses). ``read`` is h5py's time to
read every dataset of both files (``ds[()]``), as nlb_tools does; nlbsuite reads only what it
scores, through :mod:`nlbsuite.h5read` (memory maps, gzip chunks inflated in threads). The two
scorers' numbers are checked to agree.
nlbsuite's compiled kernels run trials in parallel on ``--kernel-threads`` threads (default:
all cores); nlb_tools is single-threaded numpy. Needs nlb_tools, hence the oracle venv::

    /work/main/.venv-oracle/bin/python benchmarks/bench_evaluation.py            # all layouts
    /work/main/.venv-oracle/bin/python benchmarks/bench_evaluation.py mc_maze --bins 5 20
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import h5py
import numba
import numpy as np
from nlb_tools.evaluation import evaluate as nlb_evaluate
from nlb_tools.make_tensors import save_to_h5
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlbsuite.scoring import score_submission
from nlbsuite.submission import write_submission, write_target
from nlbsuite.synthetic_targets import FULL_SIZES, make_case


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def read_all(*paths: Path) -> None:
    """Read every dataset of the files with h5py, as nlb_tools does."""

    def read(_: str, item: h5py.HLObject) -> None:  # returning a value would stop the visit
        if isinstance(item, h5py.Dataset):
            item[()]

    for path in paths:
        with h5py.File(path, "r") as f:
            f.visititems(read)


def max_diff(a: list[dict], b: list[dict]) -> float:
    assert [list(d) for d in a] == [list(d) for d in b], (a, b)
    worst = 0.0
    for da, db in zip(a, b, strict=True):
        for split, metrics in da.items():
            assert list(metrics) == list(db[split])
            for name, value in metrics.items():
                worst = max(worst, abs(value - db[split][name]))
    return worst


def time_case(key: str, n_train: int, n_eval: int, repeat: int, tmp: Path) -> dict:
    """Time both scorers on one dataset key: in memory, on plain h5 files and on gzip h5
    files (as nlb_tools' ``save_to_h5`` writes them); both score the very same input."""
    target, submission = make_case(key, n_train=n_train, n_eval=n_eval, seed=0)
    groups_t, groups_s = {key: target}, {key: submission}
    row: dict = {"key": key, "train": n_train, "eval": n_eval,
                 "bins": submission["eval_rates_heldout"].shape[1]}  # fmt: skip
    t_nlb, ref = best_of(partial(nlb_evaluate, groups_t, groups_s), repeat)
    t_ours, got = best_of(partial(score_submission, groups_t, groups_s), repeat)
    row["memory"] = (t_nlb, t_ours, 0.0)
    diffs = [max_diff(ref, got)]
    for name in ("plain", "gzip"):
        tpath, spath = tmp / f"{key}_{name}_target.h5", tmp / f"{key}_{name}_sub.h5"
        if name == "gzip":
            save_to_h5(groups_t, str(tpath))  # nlb_tools' writer: gzip for nested groups
            write_submission(spath, groups_s, compression="gzip")
        else:
            write_target(tpath, groups_t)
            write_submission(spath, groups_s, compression=None)
        t_read = best_of(partial(read_all, tpath, spath), repeat)[0]
        t_nlb, ref = best_of(partial(nlb_evaluate, str(tpath), str(spath)), repeat)
        t_ours, got = best_of(partial(score_submission, tpath, spath), repeat)
        row[name] = (t_nlb, t_ours, t_read)
        diffs.append(max_diff(ref, got))
        tpath.unlink()
        spath.unlink()
    row["max_abs_diff"] = max(diffs)
    row["metrics"] = got
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=list(FULL_SIZES))
    parser.add_argument("--bins", type=int, nargs="+", default=[5])
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs of each scorer")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both")
    parser.add_argument(
        "--kernel-threads", type=int, help="threads for nlbsuite's kernels (default: all cores)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.kernel_threads:
        numba.set_num_threads(args.kernel_threads)
    print(f"BLAS threads {args.threads}, nlbsuite kernel threads {numba.get_num_threads()}")
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    variants = ("memory", "plain", "gzip")
    rows = []
    with threadpool_limits(args.threads), tempfile.TemporaryDirectory() as tmp:
        warm_t, warm_s = make_case("mc_maze_small_20", n_train=10, n_eval=5)  # imports, caches
        nlb_evaluate({"mc_maze_small_20": warm_t}, {"mc_maze_small_20": warm_s})
        score_submission({"mc_maze_small_20": warm_t}, {"mc_maze_small_20": warm_s})
        header = " | ".join(f"{v}: nlb_tools nlbsuite speedup" for v in variants)
        print(f"{'key':17s} {'trials':>9s} {'bins':>4s} | {header} | read plain/gzip | max|diff|")
        for dataset in args.datasets:
            for bin_ms in args.bins:
                key = dataset if bin_ms == 5 else f"{dataset}_{bin_ms}"
                r = time_case(key, *FULL_SIZES[dataset], args.repeat, Path(tmp))
                rows.append(r)
                cells = " | ".join(
                    f"{r[v][0]:8.2f}s {r[v][1]:7.3f}s {r[v][0] / r[v][1]:6.1f}x" for v in variants
                )
                print(
                    f"{key:17s} {r['train']:4d}+{r['eval']:<4d} {r['bins']:4d} | {cells} | "
                    f"{r['plain'][2]:.3f}s/{r['gzip'][2]:.3f}s | {r['max_abs_diff']:.1e}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
