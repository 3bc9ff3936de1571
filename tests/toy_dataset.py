"""A third-party dataset as a package would register it (``nlbsuite.datasets`` entry point
``toy_data = "toy_dataset:CARD"``): the tiny Lorenz data under its own name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nlbsuite.catalog import DatasetCard
from nlbsuite.data import PhaseData

CARD = DatasetCard(
    "toy_data",
    "Toy",
    "a registered third-party dataset",
    loader="toy_dataset:load",
    metrics=("co-bps", "fp-bps"),
    default_bin_width_ms=20,
)


def load(
    card: DatasetCard, phase: str, bin_width_ms: int | None, seed: int, nwb: list[Path] | None
) -> PhaseData:
    from nlbsuite.lorenz import make_lorenz

    data = make_lorenz(phase=phase, seed=seed, size="tiny", bin_width_ms=bin_width_ms)
    return dataclasses.replace(data, dataset=card.name)
