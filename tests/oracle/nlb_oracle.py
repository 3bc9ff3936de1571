"""Build tensors with unmodified nlb_tools 0.0.4 (oracle venv only)."""

from __future__ import annotations

import logging
from pathlib import Path

logging.getLogger("nlb_tools").setLevel(logging.ERROR)


def nlb_tools_tensors(folder: Path, dataset: str, bin_ms: int, phase: str, seed: int = 0):
    """(train_input, eval_input, eval_target | None) dicts straight from nlb_tools."""
    import warnings

    from nlb_tools.make_tensors import (
        make_eval_input_tensors,
        make_eval_target_tensors,
        make_train_input_tensors,
    )
    from nlb_tools.nwb_interface import NWBDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = NWBDataset(str(folder))
        ds.resample(bin_ms)
        train_split = "train" if phase == "val" else ["train", "val"]
        train = make_train_input_tensors(
            ds,
            dataset,
            train_split,
            save_file=False,
            include_behavior=True,
            include_forward_pred=True,
            seed=seed,
        )
        evals = make_eval_input_tensors(
            ds, dataset, "val" if phase == "val" else "test", save_file=False, seed=seed
        )
        target = None
        if phase == "val":
            target = make_eval_target_tensors(
                ds, dataset, "train", "val", save_file=False, include_psth=True, seed=seed
            )
    return train, evals, target


def h5_datasets(group) -> dict:
    """Every dataset below an h5 ``group`` by its path relative to the group ("a/x")."""
    import h5py

    found = {}
    group.visititems(
        lambda name, item: found.update({name: item}) if isinstance(item, h5py.Dataset) else None
    )
    return found
