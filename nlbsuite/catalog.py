"""The benchmark's facts in one place: datasets, dataset keys and metrics.

Light to import (no numpy stack): the leaderboard, ``compare`` and the CLI read these facts
without importing the scorer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from nlbsuite.errors import UserError


@dataclass(frozen=True)
class MetricInfo:
    """How to read a metric: its direction decides what `compare` calls a regression."""

    name: str
    higher_is_better: bool = True
    official: bool = True
    description: str = ""
    ranked: bool = True  # False: a property of the data (the ceiling), not of the model


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("co-bps", description="co-smoothing bits per spike on held-out neurons"),
        MetricInfo("vel R2", description="ridge-decoded velocity R2 from all rates"),
        MetricInfo("psth R2", description="condition-averaged rate R2 against true PSTHs"),
        MetricInfo("fp-bps", description="forward-prediction bits per spike"),
        # NLB'21 reports tp corr with "lower is better": neural speed should fall as the
        # produced interval grows, so a stronger (more negative) correlation is better.
        MetricInfo(
            "tp corr",
            higher_is_better=False,
            description="per-condition corr. of neural speed with tp (more negative is better)",
        ),
        MetricInfo("rate R2", official=False, description="R2 of predicted vs true rates"),
        MetricInfo(
            "ceiling co-bps", official=False, ranked=False, description="co-bps of the true rates"
        ),
        MetricInfo("co-bps / ceiling", official=False, description="co-bps over the ceiling"),
    ]
}



NLB_ORDER = (
    "mc_maze",
    "mc_rtt",
    "area2_bump",
    "dmfc_rsg",
    "mc_maze_large",
    "mc_maze_medium",
    "mc_maze_small",
)
SCALING_PREFIX = {"mc_maze_large": "[500]", "mc_maze_medium": "[250]", "mc_maze_small": "[100]"}
OTHER_DATASETS = ("lorenz", "lorenz_tiny")


@dataclass(frozen=True)
class NLBShape:
    """Fixed sizes of an NLB dataset: neurons and bins at 5 ms (bins scale with 5/bin)."""

    n_heldin: int
    n_heldout: int
    n_bins_5ms: int
    n_forward_5ms: int = 40

    def bins(self, bin_width_ms: int) -> tuple[int, int]:
        """(bins per trial, forward bins) at ``bin_width_ms``."""
        return self.n_bins_5ms * 5 // bin_width_ms, self.n_forward_5ms * 5 // bin_width_ms


# As in nlb_tools' AutoLFADS configs (DATA_DIM, CS_DIM = held-out, SEQ_LEN = bins + 40).
NLB_SHAPES: dict[str, NLBShape] = {
    "mc_maze": NLBShape(137, 45, 140),
    "mc_rtt": NLBShape(98, 32, 120),
    "area2_bump": NLBShape(49, 16, 120),
    "dmfc_rsg": NLBShape(45, 15, 300),
    "mc_maze_large": NLBShape(122, 40, 140),
    "mc_maze_medium": NLBShape(114, 38, 140),
    "mc_maze_small": NLBShape(107, 35, 140),
}

SUBMISSION_KEYS = (
    "train_rates_heldin",
    "train_rates_heldout",
    "eval_rates_heldin",
    "eval_rates_heldout",
    "eval_rates_heldin_forward",
    "eval_rates_heldout_forward",
)


@cache
def parse_dataset_key(key: str) -> tuple[str, int]:
    """``mc_maze_20`` -> (``mc_maze``, 20); ``mc_maze_small`` -> (``mc_maze_small``, 5).

    Raises :class:`UserError` for keys of no known dataset.
    """
    for name in sorted((*NLB_ORDER, *OTHER_DATASETS), key=len, reverse=True):
        if key == name:
            return name, 5
        m = re.fullmatch(re.escape(name) + r"_(\d+)", key)
        if m:
            return name, int(m.group(1))
    valid = [k for d in (*NLB_ORDER, *OTHER_DATASETS) for k in (d, f"{d}_20")]
    raise UserError(f"unknown dataset key '{key}': expected one of {', '.join(valid)}")


def ordered_keys(keys: list[str]) -> list[str]:
    """nlb_tools' order (dataset, then 5 ms before 20 ms), then other datasets."""
    order = [d + s for d in NLB_ORDER for s in ("", "_20")]
    return [k for k in order if k in keys] + sorted(k for k in keys if k not in order)
