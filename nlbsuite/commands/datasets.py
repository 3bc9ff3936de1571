"""``nlbsuite datasets``: list the datasets."""

from __future__ import annotations

import argparse

from tabulate import tabulate

from nlbsuite.datasets import list_datasets


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list datasets")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = [[d.name, d.source, d.description] for d in list_datasets()]
    print(tabulate(rows, headers=["dataset", "source", "description"], tablefmt="simple"))
    print("\nAny tensor file in nlb_tools' h5 layout also works: nlbsuite run --data FILE.h5")
    return 0
