"""``nlbsuite analyze fixed-points RUN``: all fixed points of a fitted low-rank RNN run.

A command of the lowrank_rnn package, not of the core CLI: it is registered under the
``nlbsuite.commands`` entry point (``analyze = "baselines.lowrank_rnn.cli"``), and
``nlbsuite`` imports this module only when the command runs (``nlbsuite --help`` lists it
without importing it).

RUN is a result JSON written by ``nlbsuite run``; its saved model must expose
``dynamics()`` (a piecewise-linear low-rank map, e.g. ``lowrank_rnn``). Prints every fixed
point with its stability and writes a PNG of the fixed points over the model's inferred
latent trajectories (default: beside the saved model, ``<run id>_fixed_points.png``).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlbsuite.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

KIND_STYLE = {
    "stable": {"marker": "o", "facecolors": "tab:green", "edgecolors": "k"},
    "saddle": {"marker": "X", "facecolors": "tab:orange", "edgecolors": "k"},
    "unstable": {"marker": "s", "facecolors": "tab:red", "edgecolors": "k"},
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="analyse a fitted run (fixed points of low-rank RNNs)")
    what = p.add_subparsers(dest="analysis", metavar="ANALYSIS", parser_class=type(p))
    fp = what.add_parser(
        "fixed-points", help="all fixed points of a fitted lowrank_rnn run, with stability"
    )
    fp.add_argument("run", type=Path, help="result JSON of the run (leaderboard/results/...)")
    fp.add_argument("--out", type=Path, help="PNG path (default: beside the saved model)")
    fp.add_argument("--json", action="store_true", help="print the fixed points as JSON")
    fp.add_argument(
        "--no-prune",
        action="store_true",
        help="enumerate every linear region instead of skipping proven-empty boxes",
    )
    fp.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tabulate import tabulate

    from baselines.lowrank_rnn.fixed_points import find_fixed_points
    from nlbsuite.results import load_record
    from nlbsuite.runner import load_run_model

    record = load_record(args.run)
    model = load_run_model(args.run)
    if not callable(getattr(model, "dynamics", None)):
        raise UserError(
            f"{args.run}: model '{record.model}' has no piecewise-linear latent dynamics; "
            "fixed points need a lowrank_rnn run"
        )
    try:
        fps = find_fixed_points(model.dynamics(), prune=not args.no_prune)
    except ValueError as exc:
        raise UserError(f"{args.run}: {exc}") from None
    rows = fps.table()
    if args.json:
        print(
            json.dumps(
                {
                    "run": record.run_id,
                    "seconds": fps.seconds,
                    "fixed_points": [
                        {**row, "eigenvalues": [[e.real, e.imag] for e in row["eigenvalues"]]}
                        for row in rows
                    ],
                },
                indent=2,
            )
        )
    else:
        print(
            f"{record.run_id}: {len(fps)} fixed point(s) of the rank-{fps.z.shape[1]} map "
            f"({fps.n_regions} linear regions examined in {fps.seconds:.2f} s)"
        )
        table = [
            [i, row["kind"], f"{row['spectral_radius']:.4f}", np.round(row["z"], 4).tolist()]
            for i, row in enumerate(rows)
        ]
        print(tabulate(table, headers=["#", "kind", "max |eig|", "z"], tablefmt="github"))
    if args.out is not None:
        out = args.out
    else:
        base = args.run.resolve().parent
        artifact = base / record.artifact if record.artifact else base / record.run_id
        out = artifact.with_name(f"{record.run_id}_fixed_points.png")
    latents = getattr(model, "example_latents", None)
    write_plot(fps, latents, out, title=f"{record.model} on {record.dataset_key} ({record.phase})")
    print(f"plot: {out}")
    return 0


def write_plot(fps: Any, latents: np.ndarray | None, path: Path, title: str = "") -> None:
    """PNG of fixed points (by kind) over latent trajectories (trial, time, R), written
    atomically. Rank >= 3: the three pairs of the first three latents; rank 2: one panel;
    rank 1: latent against time."""
    import matplotlib
    import numpy as np

    from nlbsuite.fileio import atomic_write_bytes

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rank = fps.z.shape[1]
    pairs = [(0, 1), (0, 2), (1, 2)] if rank >= 3 else [(0, 1)] if rank == 2 else [(None, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 4), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        if latents is not None:
            for trial in latents[:64]:
                xs = np.arange(trial.shape[0]) if i is None else trial[:, i]
                ax.plot(xs, trial[:, j], color="0.6", lw=0.6, alpha=0.6)
        for k in range(len(fps)):
            kind = fps.kind(k)
            x = 0.0 if i is None else fps.z[k, i]
            ax.scatter([x], [fps.z[k, j]], s=70, zorder=3, label=kind, **KIND_STYLE[kind])
        ax.set_xlabel("time bin" if i is None else f"z{i + 1}")
        ax.set_ylabel(f"z{j + 1}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        axes[0, -1].legend(unique.values(), unique.keys(), loc="best", fontsize=8)
    fig.suptitle(f"{title}: {len(fps)} fixed point(s)" if title else f"{len(fps)} fixed point(s)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
