"""Lorenz co-bps of the three seed torch models at ``smoke`` and a short setting, seed 0:
the before/after check for a change to their training (e.g. the port to
``nlbsuite.training``). Run it on each checkout and compare the JSON files::

    git archive OLD | tar -x -C /tmp/old
    cd /tmp/old && PYTHONPATH=. python /path/to/bench_torch_ports.py before.json
    cd REPO && PYTHONPATH=. python benchmarks/bench_torch_ports.py after.json
    python benchmarks/bench_torch_ports.py --compare before.json after.json

One torch thread, CPU, nothing recorded (``save=False``). ``MODEL:I`` runs one setting only.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: model -> [(preset, overrides)]: smoke, then a short setting (minutes on 2 shared cores).
SETTINGS: dict[str, list[tuple[str, dict]]] = {
    "langevin_flow": [("smoke", {}), ("cpu", {"epochs": 6})],
    "latent_sde": [("smoke", {}), ("smoke", {"epochs": 16})],
    "lowrank_rnn": [("smoke", {}), ("cpu", {"updates": 400, "n_evals": 4})],
}


def measure(out: Path, specs: list[str]) -> None:
    import torch

    from nlbsuite.runner import run

    torch.set_num_threads(1)
    results = json.loads(out.read_text()) if out.exists() else {}
    for spec in specs or list(SETTINGS):
        model, _, which = spec.partition(":")
        for i, (preset, overrides) in enumerate(SETTINGS[model]):
            if which and int(which) != i:
                continue
            start = time.perf_counter()
            rec = run(model, "lorenz", seed=0, preset=preset, save=False, log=None,
                      overrides={"device": "cpu", **overrides})  # fmt: skip
            key = f"{model}/{preset}{overrides or ''}"
            results[key] = {
                "co-bps": rec.metrics["co-bps"],
                "rate R2": rec.metrics.get("rate R2"),
                "seconds": round(time.perf_counter() - start, 1),
            }
            print(key, results[key], flush=True)
            out.write_text(json.dumps(results, indent=1))


def compare(before: Path, after: Path) -> None:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    print("| run | co-bps before | co-bps after | rate R2 before | rate R2 after |")
    print("|---|---|---|---|---|")
    for key in sorted(set(a) & set(b)):
        print(f"| {key} | {a[key]['co-bps']:.4f} | {b[key]['co-bps']:.4f} | "
              f"{a[key]['rate R2']:.4f} | {b[key]['rate R2']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", help="JSON file to write (or merge into)")
    parser.add_argument("specs", nargs="*", help="MODEL or MODEL:I (default: all)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        measure(args.out, args.specs)
