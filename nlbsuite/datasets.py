"""Dataset loading: one name -> one way to get a :class:`~nlbsuite.data.PhaseData`.

Which datasets exist and what they are is the catalogue's (:mod:`nlbsuite.catalog`): each
card names its loader. Built in:

- ``lorenz`` / ``lorenz_tiny``: synthetic Lorenz data with ground truth (no download);
- NLB'21's seven datasets: built from NWB files by :mod:`nlbsuite.nlb`;
- third-party datasets registered under the ``nlbsuite.datasets`` entry point.

Any tensor file in nlb_tools' h5 layout loads with :func:`load_dataset` and ``path=``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from nlbsuite.catalog import (
    DEFAULT_DATASET,
    DatasetCard,
    cards,
    check_bin_width,
    check_phase,
    get_card,
)
from nlbsuite.data import PhaseData, phase_data_from_h5, rebin
from nlbsuite.errors import UserError, require


def list_datasets() -> list[DatasetCard]:
    """Every known dataset's card: built-in ones, then registered ones."""
    return list(cards().values())


def load_lorenz_card(
    card: DatasetCard, phase: str, bin_width_ms: int | None, seed: int, nwb: list[Path] | None
) -> PhaseData:
    """The loader of the Lorenz cards (``lorenz``: default size, ``lorenz_<size>``)."""
    from nlbsuite.lorenz import make_lorenz

    size = card.name.removeprefix("lorenz").removeprefix("_") or "default"
    return make_lorenz(phase=phase, seed=seed, size=size, bin_width_ms=bin_width_ms)


def load_nlb_card(
    card: DatasetCard, phase: str, bin_width_ms: int | None, seed: int, nwb: list[Path] | None
) -> PhaseData:
    """The loader of NLB'21's datasets: tensors built from the NWB files."""
    try:
        from nlbsuite.nlb import load_nlb
    except ImportError:
        raise UserError("the NLB data layer is not available", "dataset", card.name) from None
    return load_nlb(
        card.name,
        phase=phase,
        bin_width_ms=bin_width_ms or card.default_bin_width_ms,
        nwb_paths=nwb,
        seed=seed,
    )


def load_dataset(
    dataset: str | None = DEFAULT_DATASET,
    phase: str = "val",
    bin_width_ms: int | None = None,
    seed: int = 0,
    path: str | Path | None = None,
    target: str | Path | None = None,
    nwb: list[Path] | None = None,
) -> PhaseData:
    """Load ``dataset`` for ``phase`` ("val" or "test").

    ``path``: a tensor file in nlb_tools' h5 layout (then ``dataset`` may be None and is taken
    from the file name; its bin width too, ``_20`` in the name meaning 20 ms, else 5 ms);
    ``target``: its eval-target file. A ``bin_width_ms`` wider than the file's rebins it
    (:func:`~nlbsuite.data.rebin`: spikes summed over groups of bins). ``seed`` is the data seed of
    generated datasets (Lorenz), not the model seed. ``nwb``: NWB files for NLB datasets.
    """
    check_phase(phase)
    if bin_width_ms is not None:
        check_bin_width(bin_width_ms)
    if path is not None:
        data = phase_data_from_h5(
            path,
            dataset=None if dataset in (None, DEFAULT_DATASET) else dataset,
            phase=phase,
            target_path=target,
        )
        if bin_width_ms is None or bin_width_ms == data.bin_width_ms:
            return data
        require(
            bin_width_ms % data.bin_width_ms == 0,
            f"{path} has {data.bin_width_ms} ms bins; it can only be rebinned to a multiple "
            "of that",
            "bin_width_ms",
            bin_width_ms,
        )
        return rebin(data, bin_width_ms // data.bin_width_ms)
    require(dataset is not None, "expected a dataset name (or a tensor file as path)", "dataset")
    card = get_card(dataset)
    require(phase in card.phases, f"expected one of {', '.join(card.phases)}", "phase", phase)
    module, _, attr = card.loader.partition(":")
    loader = getattr(importlib.import_module(module), attr)
    return loader(card, phase=phase, bin_width_ms=bin_width_ms, seed=seed, nwb=nwb)
