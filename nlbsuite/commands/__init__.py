"""CLI subcommands: one module each, with ``add_parser(subparsers)`` and ``run(args)``.

Packages add commands of their own under the ``nlbsuite.commands`` entry point (name ->
module with ``add_parser``; e.g. ``analyze = "baselines.lowrank_rnn.cli"``); the core
commands below cannot be replaced that way.

A module imports only argparse-level names at the top; library modules (numpy, h5py,
numba, torch, ...) are imported inside ``run``, so ``nlbsuite --help`` and the listing
commands stay fast.
"""

from __future__ import annotations

COMMANDS = [
    "datasets",
    "models",
    "run",
    "sweep",
    "tune",
    "leaderboard",
    "report",
    "compare",
    "fetch",
    "prepare",
    "submit",
    "validate",
    "score",
    "ensemble",
]


def plain_table(rows: list[list[str]], headers: list[str]) -> str:
    """Left-aligned columns two spaces apart under a dashed rule (tabulate's "simple"
    layout for text cells), without importing tabulate for a listing."""
    cells = [headers, *rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
