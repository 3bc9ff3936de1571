"""Scoring whole submission and target files (or dicts) in nlb_tools' layout:
:func:`score_by_key` (every key, with nlbsuite's extras) and :func:`score_submission`
(exactly nlb_tools' ``evaluate`` result structure)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from nlbsuite.catalog import METRICS, NLB_ORDER, SCALING_PREFIX, ordered_keys, parse_dataset_key
from nlbsuite.errors import UserError
from nlbsuite.scoring.evaluator import Evaluator
from nlbsuite.scoring.h5io import dataset_keys, open_h5_tree
from nlbsuite.scoring.rules import first_error, tree_problems
from nlbsuite.scoring.scores import Scores


def score_by_key(
    target: str | Path | Mapping[str, Any],
    submission: str | Path | Mapping[str, Any],
    *,
    n_boot: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
    skipped: list[str] | None = None,
) -> dict[str, Scores]:
    """Score every dataset key of ``submission`` that ``target`` has.

    Both are nlb_tools-layout files (``submission.h5`` and ``eval_target.h5`` /
    ``eval_data_*.h5``) or dicts. Keys in the submission without a target group are left
    out and, if ``skipped`` is a list, appended to it. Raises :class:`UserError` for the
    first error of the submission rules (:func:`tree_problems`, :meth:`Evaluator.problems`:
    what ``nlbsuite validate`` lists) or when no key can be scored.
    """
    label = "submission" if isinstance(submission, Mapping) else f"submission {submission}"
    with ExitStack() as stack:
        sub_tree = stack.enter_context(open_h5_tree(submission, "submission"))
        tgt_tree = stack.enter_context(open_h5_tree(target, "target"))
        tgt_keys = set(dataset_keys(tgt_tree, "target"))
        sub_keys, problems = tree_problems(sub_tree)
        first_error(problems, label)
        out: dict[str, Scores] = {}
        for k in ordered_keys(sub_keys):
            if k not in tgt_keys:
                if skipped is not None:
                    skipped.append(k)
                continue
            out[k] = Evaluator(k).eval(
                sub_tree[k],
                tgt_tree[k],
                n_boot=n_boot,
                seed=seed,
                confidence=confidence,
                source=label,
            )
        if not out:
            raise UserError(
                f"nothing to score: submission has {', '.join(sub_keys)}, target has "
                f"{', '.join(sorted(tgt_keys)) or 'no dataset groups'}"
            )
        return out


def score_submission(
    target: str | Path | Mapping[str, Any], submission: str | Path | Mapping[str, Any]
) -> list[dict[str, dict[str, float]]]:
    """Exactly the structure nlb_tools' ``evaluate(target, submission)`` returns.

    ``[{"mc_maze_split": {"co-bps": ..., "vel R2": ..., "psth R2": ..., "fp-bps": ...}},
    ..., {"mc_maze_scaling_split": {"[100] co-bps": ..., ...}}]``; non-NLB keys are left out.
    """
    by_key = score_by_key(target, submission)
    result: list[dict[str, dict[str, float]]] = []
    scaling: dict[str, dict[str, float]] = {"": {}, "_20": {}}
    for k, scores in by_key.items():
        dataset, bin_ms = parse_dataset_key(k)
        if dataset not in NLB_ORDER or bin_ms not in (5, 20):
            continue
        suffix = "" if bin_ms == 5 else "_20"
        official = {m: v for m, v in scores.metrics.items() if METRICS[m].official}
        if dataset in SCALING_PREFIX:
            scaling[suffix].update(
                {f"{SCALING_PREFIX[dataset]} {m}": v for m, v in official.items()}
            )
        else:
            result.append({f"{k}_split": official})
    for suffix in ("", "_20"):
        if scaling[suffix]:
            result.append({f"mc_maze_scaling{suffix}_split": scaling[suffix]})
    return result

