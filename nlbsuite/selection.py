"""No selection on the test split: the one rule, and the check every selecting tool calls.

Anything that *chooses* between configurations (presets tuned on scores, early stopping,
sweeps, hyperparameter search, picking the best seed) may look at train and val trials only.
The test split is scored once, for a configuration fixed beforehand: a number chosen on the
test trials is an optimistic estimate, not a test score (NLB's published leaderboard was
scored by EvalAI on hidden data for exactly this reason; with the targets now public, the
suite has to keep the discipline). A tool that selects calls :func:`forbid_test_selection`
with the phase it was asked for before it does anything.
"""

from __future__ import annotations

from nlbsuite.errors import UserError

#: The phases selection may use (the train/val split).
SELECTION_PHASES = ("val",)


def forbid_test_selection(phase: str, tool: str) -> None:
    """:class:`UserError` unless ``phase`` may be used to choose a configuration.

    ``tool`` names the selecting tool in the message (e.g. ``"nlbsuite tune"``).
    """
    if phase in SELECTION_PHASES:
        return
    raise UserError(
        f"{tool} selects a configuration, so it runs on the val phase (train/val trials) only, "
        f"not phase '{phase}': fix the configuration on val, then score it once with "
        "'nlbsuite run --phase test'"
    )
