"""``nlbsuite datasets``: list the datasets."""

from __future__ import annotations

import argparse

from nlbsuite.commands import plain_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list datasets")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlbsuite.datasets import list_datasets

    rows = [[d.name, d.source, d.description] for d in list_datasets()]
    print(plain_table(rows, ["dataset", "source", "description"]))
    print("\nAny tensor file in nlb_tools' h5 layout also works: nlbsuite run --data FILE.h5")
    return 0
