"""``nlbsuite models``: list registered models (built-in and entry-point)."""

from __future__ import annotations

import argparse

from nlbsuite.commands import plain_table
from nlbsuite.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models and their presets")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.registry import BUILTIN_DIST, get_model_class, model_sources

    rows = []
    for name, (target, dist) in model_sources().items():
        origin = "built-in" if dist == BUILTIN_DIST else dist or "entry point"
        try:
            cls = get_model_class(name)
        except UserError as exc:
            rows.append([name, origin, "", "", f"unavailable: {exc}"])
            continue
        kind = "stochastic" if cls.info.stochastic else "deterministic"
        rows.append(
            [
                name,
                origin,
                ", ".join(cls.presets),
                kind,
                cls.info.description or cls.info.citation or target,
            ]
        )
    print(plain_table(rows, ["model", "from", "presets", "kind", "description"]))
    return 0
