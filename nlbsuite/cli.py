"""The ``nlbsuite`` command line: a thin layer over the library.

Each subcommand is a module in :mod:`nlbsuite.commands` with ``add_parser(subparsers)`` and
``run(args) -> int``. A :class:`~nlbsuite.errors.UserError` anywhere becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from nlbsuite import __version__
from nlbsuite.commands import COMMANDS
from nlbsuite.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nlbsuite",
        description="Neural Latents Benchmark '21 suite: datasets, models, scoring, leaderboard.",
    )
    parser.add_argument("--version", action="version", version=f"nlbsuite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"nlbsuite.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv or ["run"])
    if args.command is None:
        args = parser.parse_args(["run", *argv])
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"nlbsuite: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nlbsuite: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
