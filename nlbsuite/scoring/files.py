"""Scoring whole submission and target files (or dicts) in nlb_tools' layout:
:func:`score_by_key` (every key, with nlbsuite's extras) and :func:`score_submission`
(exactly nlb_tools' ``evaluate`` result structure)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from nlbsuite.catalog import BIN_WIDTHS_MS, METRICS, SCALING_SPLIT, DatasetKey, ordered_keys
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
    scaling: dict[int, dict[str, float]] = {b: {} for b in BIN_WIDTHS_MS}
    for k, scores in by_key.items():
        key = DatasetKey.parse(k)
        card = key.card
        if not card.official or key.bin_width_ms not in BIN_WIDTHS_MS:
            continue
        official = {m: v for m, v in scores.metrics.items() if METRICS[m].official}
        if card.scaling_prefix:
            scaling[key.bin_width_ms].update(
                {f"{card.scaling_prefix} {m}": v for m, v in official.items()}
            )
        else:
            result.append({f"{k}_split": official})
    for bin_ms, metrics in scaling.items():
        if metrics:
            result.append({f"{DatasetKey(SCALING_SPLIT, bin_ms)}_split": metrics})
    return result

