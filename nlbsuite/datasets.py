"""Dataset registry: one name -> one way to get a :class:`~nlbsuite.data.PhaseData`.

- ``lorenz`` / ``lorenz_tiny``: synthetic Lorenz data with ground truth (no download).
- NLB'21 datasets (``mc_maze``, ``mc_rtt``, ``area2_bump``, ``dmfc_rsg``, ``mc_maze_large``,
  ``mc_maze_medium``, ``mc_maze_small``): built from NWB files by :mod:`nlbsuite.nlb`.
- Any tensor file in nlb_tools' h5 layout: :func:`load_dataset` with ``path=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nlbsuite.data import BIN_WIDTHS_MS, PHASES, PhaseData, phase_data_from_h5, rebin
from nlbsuite.errors import UserError, require
from nlbsuite.registry import did_you_mean


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    source: str


LORENZ_DATASETS = {
    "lorenz": DatasetInfo(
        "lorenz",
        "Lorenz latents -> Poisson spikes, 65 cond x 20 trials, 1 s at 20 ms, "
        "22+8 neurons, true rates known",
        "generated (no download)",
    ),
    "lorenz_tiny": DatasetInfo(
        "lorenz_tiny",
        "tiny Lorenz for tests: 8 cond x 6 trials, 0.4 s at 20 ms",
        "generated (no download)",
    ),
}
NLB_DATASETS = {
    "mc_maze": DatasetInfo(
        "mc_maze", "monkey motor cortex, delayed center-out maze reaching", "DANDI 000128"
    ),
    "mc_rtt": DatasetInfo("mc_rtt", "monkey motor cortex, random target reaching", "DANDI 000129"),
    "area2_bump": DatasetInfo(
        "area2_bump", "monkey area 2, reaching with bump perturbations", "DANDI 000127"
    ),
    "dmfc_rsg": DatasetInfo("dmfc_rsg", "monkey DMFC, ready-set-go timing task", "DANDI 000130"),
    "mc_maze_large": DatasetInfo(
        "mc_maze_large", "MC_Maze scaled, 500 train trials", "DANDI 000138"
    ),
    "mc_maze_medium": DatasetInfo(
        "mc_maze_medium", "MC_Maze scaled, 250 train trials", "DANDI 000139"
    ),
    "mc_maze_small": DatasetInfo(
        "mc_maze_small", "MC_Maze scaled, 100 train trials", "DANDI 000140"
    ),
}


def list_datasets() -> list[DatasetInfo]:
    return [*LORENZ_DATASETS.values(), *NLB_DATASETS.values()]


def load_dataset(
    dataset: str | None = "lorenz",
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
    require(phase in PHASES, f"expected one of {', '.join(PHASES)}", "phase", phase)
    if bin_width_ms is not None:
        require(
            bin_width_ms in BIN_WIDTHS_MS,
            f"expected one of {', '.join(map(str, BIN_WIDTHS_MS))} ms",
            "bin_width_ms",
            bin_width_ms,
        )
    if path is not None:
        data = phase_data_from_h5(
            path,
            dataset=None if dataset in (None, "lorenz") else dataset,
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
    if dataset in LORENZ_DATASETS:
        from nlbsuite.lorenz import make_lorenz

        size = "tiny" if dataset == "lorenz_tiny" else "default"
        return make_lorenz(phase=phase, seed=seed, size=size, bin_width_ms=bin_width_ms)
    if dataset in NLB_DATASETS:
        try:
            from nlbsuite.nlb import load_nlb
        except ImportError:
            raise UserError("the NLB data layer is not available", "dataset", dataset) from None
        return load_nlb(
            dataset, phase=phase, bin_width_ms=bin_width_ms or 5, nwb_paths=nwb, seed=seed
        )
    known = [*LORENZ_DATASETS, *NLB_DATASETS]
    require(dataset is not None, "expected a dataset name (or a tensor file as path)", "dataset")
    raise UserError(f"unknown dataset; {did_you_mean(dataset, known)}", "dataset", dataset)
