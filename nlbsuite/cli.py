"""The ``nlbsuite`` command line: a thin layer over the library.

Each subcommand is a module in :mod:`nlbsuite.commands` with ``add_parser(subparsers)`` and
``run(args) -> int``; a module imports only argparse-level things at the top and its library
modules inside ``run``, so building the parser (``--help``) stays cheap and a command imports
only what it uses. A :class:`~nlbsuite.errors.UserError` anywhere becomes one line on
stderr and exit code 2; one about a Python parameter names the flag that sets it instead.
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
        command = sub.choices[name]
        command.set_defaults(cli_flags=_flags(command))
    return parser


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Python parameter -> the command's flag: each option's ``dest`` -> its long option
    (``bin_width_ms`` -> ``--bin``, ``overrides`` -> ``--set``), positionals by name."""
    flags = {}
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs:
            flags[action.dest] = longs[0]
        elif not action.option_strings and isinstance(action.dest, str):
            flags[action.dest] = action.dest
    return flags


def cli_message(error: UserError, flags: dict[str, str]) -> str:
    """``error`` as the CLI shows it: a parameter the command sets by a flag is named by it."""
    if error.param is not None and error.param in flags:
        return error.for_flag(flags[error.param])
    return str(error)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv or ["run"])
    if args.command is None:
        args = parser.parse_args(["run", *argv])
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        message = cli_message(exc, getattr(args, "cli_flags", {}))
        print(f"nlbsuite: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nlbsuite: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
