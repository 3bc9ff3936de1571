"""``nlbsuite validate``: list every problem of a submission file before uploading it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a submission h5: keys, shapes, dtype, NaN/inf, negative and all-zero rates",
    )
    p.add_argument("file", type=Path, help="submission file (EvalAI / nlb_tools layout)")
    p.add_argument(
        "--target", type=Path, help="eval-target file: also check trial counts against it"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when there is no error (warnings allowed), 2 otherwise."""
    from nlbsuite.submission import validate_submission

    problems = validate_submission(args.file, args.target)
    for problem in problems:
        print(problem)
    n_err = sum(p.severity == "error" for p in problems)
    n_warn = len(problems) - n_err
    verdict = "OK" if n_err == 0 else "INVALID"
    print(f"{args.file}: {verdict} ({n_err} error(s), {n_warn} warning(s))")
    return 2 if n_err else 0
