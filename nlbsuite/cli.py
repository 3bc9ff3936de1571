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

#: Entry-point group through which packages add ``nlbsuite`` commands.
PLUGIN_GROUP = "nlbsuite.commands"

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse usage errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``nlbsuite`` parser: the core commands, then those other packages register under
    the ``nlbsuite.commands`` entry point. A package's command module is imported only when
    ``argv`` runs it; otherwise the command is listed with a stub (its package named), so
    ``nlbsuite --help`` imports no model package."""
    parser = _Parser(
        prog="nlbsuite",
        description="Neural Latents Benchmark '21 suite: datasets, models, scoring, leaderboard.",
    )
    parser.add_argument("--version", action="version", version=f"nlbsuite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"nlbsuite.commands.{name}").add_parser(sub)
    wanted = next((a for a in argv or [] if not a.startswith("-")), None)
    for name, target in plugin_commands().items():
        if name in sub.choices:
            continue  # core commands cannot be replaced
        if name == wanted:
            _add_plugin(sub, name, target)
        else:
            sub.add_parser(name, help=f"(from {target.partition(':')[0]}) see: nlbsuite {name} -h")
    for command in sub.choices.values():
        command.set_defaults(cli_flags=_flags(command))
    return parser


def plugin_commands() -> dict[str, str]:
    """Command name -> ``"module[:attr]"`` from the ``nlbsuite.commands`` entry point."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=PLUGIN_GROUP)}


def _add_plugin(sub: argparse._SubParsersAction, name: str, target: str) -> None:
    """Import a package's command (a module with ``add_parser``, or ``module:function``) and
    let it add its parser; if it cannot be imported, running it is one clear error."""
    module_name, _, attr = target.partition(":")
    try:
        add_parser = getattr(importlib.import_module(module_name), attr or "add_parser")
    except (ImportError, AttributeError) as exc:
        message = f"command '{name}' ({target}) cannot be loaded: {exc}"

        def fail(args: argparse.Namespace) -> int:
            raise UserError(message)

        stub = sub.add_parser(name, help=message)
        stub.add_argument("rest", nargs=argparse.REMAINDER)
        stub.set_defaults(func=fail)
        return
    add_parser(sub)


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
    parser = build_parser(argv)
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
