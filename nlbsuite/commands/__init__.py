"""CLI subcommands: one module each, with ``add_parser(subparsers)`` and ``run(args)``."""

COMMANDS = [
    "datasets",
    "models",
    "run",
    "leaderboard",
    "compare",
    "fetch",
    "prepare",
    "submit",
    "validate",
    "score",
    "analyze",
]
