"""nlb_tools 0.0.4's data-preparation and scoring API on nlbsuite's fast code.

Change the imports of an nlb_tools script and keep the rest::

    # from nlb_tools.nwb_interface import NWBDataset
    # from nlb_tools.make_tensors import make_train_input_tensors, ..., save_to_h5
    # from nlb_tools.evaluation import evaluate
    from nlbsuite.compat import NWBDataset, make_train_input_tensors, ..., save_to_h5, evaluate

Same signatures, defaults and return values as nlb_tools 0.0.4 (dicts of (trial, time,
neuron) arrays under its keys, files in its ``save_to_h5`` layout, ``evaluate``'s list of
dicts), computed by :mod:`nlbsuite.nlb` (vectorised binning and windowing, no pandas
DataFrame of the whole session) and :mod:`nlbsuite.scoring`. What nlbsuite does not
implement (``update_params``, ``NWBDataset.data``, ``make_trial_data``, smoothing, ...)
raises :class:`~nlbsuite.errors.UserError` naming the alternative.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlbsuite.errors import UserError

logger = logging.getLogger(__name__)

_BEHAVIOR_SIGNALS = ("hand_vel", "finger_vel")
_SPLITS = ("train", "val", "test")
# nlb_tools.NWBDataset members nlbsuite.compat does not provide.
_UNSUPPORTED = {
    "data": "it keeps no DataFrame of the session; build tensors with make_*_tensors",
    "make_trial_data": "use make_train_input_tensors / make_eval_input_tensors",
    "smooth_spk": "smooth the tensors (e.g. scipy.ndimage.gaussian_filter1d along time)",
    "add_continuous_data": "add your signal to the tensors instead",
    "add_trialized_data": "add your signal to the tensors instead",
    "calculate_onset": "movement onsets come with the NLB files (move_onset_time)",
    "load": "create a new NWBDataset(path)",
    "descriptions": "read the NWB file with pynwb",
}


def _unsupported(what: str, why: str) -> UserError:
    return UserError(f"{what} is not supported by nlbsuite.compat ({why}); or use nlb_tools")


class NWBDataset:
    """``nlb_tools.nwb_interface.NWBDataset``: an NLB session read from NWB file(s).

    ``fpath``: an NWB file or a folder (its ``prefix*.nwb`` files, joined as one session).
    Attributes: ``trial_info`` (pandas DataFrame of the trials table, times as Timedelta,
    like nlb_tools'), ``bin_width`` (ms; 1 until :meth:`resample`), ``fpath``, ``prefix``.
    """

    def __init__(
        self,
        fpath: str | Path,
        prefix: str = "",
        split_heldout: bool = True,
        skip_fields: Sequence[str] = (),
    ):
        from nlbsuite.nlb.nwb import read_recording

        if not split_heldout:
            raise _unsupported("NWBDataset(split_heldout=False)", "held-out units stay apart")
        if skip_fields:
            raise _unsupported("NWBDataset(skip_fields=...)", "only needed signals are read")
        if not isinstance(fpath, (str, Path)):
            raise _unsupported("NWBDataset(<nwbfile object>)", "pass the file's path")
        path = Path(os.path.expanduser(fpath))
        if not path.exists():
            raise UserError(f"{path}: NWB file or folder not found")
        paths = sorted(path.glob(prefix + "*.nwb")) if path.is_dir() else [path]
        if not paths:
            raise UserError(f"{path}: no '{prefix}*.nwb' files in this folder")
        self.fpath = str(fpath)
        self.prefix = prefix
        self.bin_width = 1
        self._rec = read_recording(paths, _BEHAVIOR_SIGNALS)
        self._binned: dict[tuple[int, str | None], Any] = {}
        self.trial_info = self._trial_frame()

    def _trial_frame(self) -> Any:
        import pandas as pd

        cols = self._rec.trials.columns  # times: int64 ns, NAT (int64 min) is pandas' NaT
        first = [k for k in ("trial_id", "start_time", "end_time") if k in cols]
        order = first + [k for k in cols if k not in first]  # nlb_tools' column order
        return pd.DataFrame(
            {k: pd.to_timedelta(cols[k]) if k.endswith("_time") else cols[k] for k in order}
        )

    def resample(self, target_bin: int) -> None:
        """Bin the session at ``target_bin`` ms (5 or 20), as nlb_tools does (from 1 ms)."""
        from nlbsuite.catalog import check_bin_width

        if target_bin == self.bin_width:
            return
        if self.bin_width != 1:
            raise _unsupported(
                f"resample({target_bin}) after resample({self.bin_width})",
                "resample once; make a new NWBDataset for another bin width",
            )
        try:
            self.bin_width = check_bin_width(int(target_bin))
        except UserError as exc:  # name nlb_tools' parameter, not nlbsuite's
            raise UserError(exc.message, "target_bin", target_bin) from None

    def __getattr__(self, name: str) -> Any:
        if name in _UNSUPPORTED:
            raise _unsupported(f"NWBDataset.{name}", _UNSUPPORTED[name])
        raise AttributeError(name)

    # -- used by the make_* functions ------------------------------------------------------

    def _prepared(self, dataset_name: str, update_params: dict | None) -> tuple[Any, Any, Any]:
        """(spec, recording, binned) for ``dataset_name`` at the current bin width."""
        from nlbsuite.nlb.specs import get_spec
        from nlbsuite.nlb.tensors import bin_recording

        if update_params:
            raise _unsupported(
                "update_params", "dataset parameters are fixed in nlbsuite.nlb.specs"
            )
        if self.bin_width == 1:
            raise UserError("NWBDataset is at 1 ms: call dataset.resample(5) or resample(20) first")
        spec = get_spec(dataset_name)
        field = spec.behavior_field if spec.behavior_source == "data" else None
        key = (self.bin_width, field)
        if key not in self._binned:
            self._binned[key] = bin_recording(self._rec, self.bin_width, field)
        return spec, self._rec, self._binned[key]

    def _mask(self, trial_split: Any, what: str = "trial_split") -> np.ndarray:
        """nlb_tools' ``_prep_mask``: split name(s), a boolean mask, or a list of them."""
        split = self._rec.trials.split
        items = trial_split if isinstance(trial_split, list) else [trial_split]
        mask = np.zeros(len(split), dtype=bool)
        for item in items:
            if isinstance(item, str):
                if item not in _SPLITS:
                    raise UserError(f"{what} '{item}': expected one of {', '.join(_SPLITS)}")
                mask |= split == item
                continue
            arr = np.asarray(item)
            if arr.dtype != bool or arr.shape != split.shape:
                raise UserError(
                    f"{what}: expected a split name or a boolean mask of {len(split)} trials, "
                    f"got {arr.dtype} {arr.shape}"
                )
            mask |= arr
        return mask


def _check(dataset: Any) -> NWBDataset:
    if not isinstance(dataset, NWBDataset):
        raise UserError(
            f"dataset: expected an nlbsuite.compat.NWBDataset, got {type(dataset).__name__}"
        )
    return dataset


def _finish(
    data: dict[str, Any], save_file: bool, return_dict: bool, save_path: str
) -> dict[str, Any] | None:
    if save_file:
        save_to_h5(data, save_path if save_path.endswith(".h5") else save_path + ".h5", True)
    return data if return_dict else None


def make_train_input_tensors(
    dataset: NWBDataset,
    dataset_name: str,
    trial_split: Any = "train",
    update_params: dict | None = None,
    save_file: bool = True,
    return_dict: bool = True,
    save_path: str = "train_input.h5",
    include_behavior: bool = False,
    include_forward_pred: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray] | None:
    """``train_spikes_heldin`` / ``train_spikes_heldout`` (trial, time, neuron), plus
    ``train_behavior`` and the ``*_forward`` spikes when asked, of ``trial_split``."""
    from nlbsuite.nlb.tensors import make_train_input

    ds = _check(dataset)
    spec, rec, binned = ds._prepared(dataset_name, update_params)
    full = make_train_input(rec, binned, spec, ds._mask(trial_split), seed)
    keys = ["train_spikes_heldin", "train_spikes_heldout"]
    keys += ["train_behavior"] * include_behavior
    keys += ["train_spikes_heldin_forward", "train_spikes_heldout_forward"] * include_forward_pred
    return _finish({k: full[k] for k in keys}, save_file, return_dict, save_path)


def make_eval_input_tensors(
    dataset: NWBDataset,
    dataset_name: str,
    trial_split: Any = "val",
    update_params: dict | None = None,
    save_file: bool = True,
    return_dict: bool = True,
    save_path: str = "eval_input.h5",
    seed: int = 0,
) -> dict[str, np.ndarray] | None:
    """``eval_spikes_heldin`` (and, without test trials, ``eval_spikes_heldout``)."""
    from nlbsuite.nlb.tensors import make_eval_input

    ds = _check(dataset)
    spec, rec, binned = ds._prepared(dataset_name, update_params)
    data = make_eval_input(rec, binned, spec, ds._mask(trial_split), seed)
    return _finish(data, save_file, return_dict, save_path)


def make_eval_target_tensors(
    dataset: NWBDataset,
    dataset_name: str,
    train_trial_split: Any = "train",
    eval_trial_split: Any = "val",
    update_params: dict | None = None,
    save_file: bool = True,
    return_dict: bool = True,
    save_path: str = "target_data.h5",
    include_psth: bool = False,
    seed: int = 0,
) -> dict[str, dict[str, Any]] | None:
    """``{dataset key: evaluation target}`` (key ``mc_maze`` at 5 ms, ``mc_maze_20`` ...)."""
    from nlbsuite.catalog import DatasetKey
    from nlbsuite.nlb.tensors import make_eval_target

    ds = _check(dataset)
    spec, rec, binned = ds._prepared(dataset_name, update_params)
    train = ds._mask(train_trial_split, "train_trial_split")
    evals = ds._mask(eval_trial_split, "eval_trial_split")
    body = make_eval_target(rec, binned, spec, train, evals, seed, include_psth)
    data = {str(DatasetKey(dataset_name, ds.bin_width)): body}
    return _finish(data, save_file, return_dict, save_path)


# ----------------------------------------------------------------------------------------
# Files and scoring
# ----------------------------------------------------------------------------------------


def _h5_dtype(dtype: np.dtype, dlen: int | None) -> Any:
    if dlen is not None and np.issubdtype(dtype, np.floating):
        return np.dtype(f"float{dlen}")
    if dlen is not None and np.issubdtype(dtype, np.integer):
        return np.dtype(f"int{dlen}")
    return dtype


def _write_tree(group: Any, data: Mapping[str, Any], dlen: int | None, compression: Any) -> None:
    """nlb_tools' ``_save_h5_r``: dicts as groups, ragged lists as variable-length data."""
    import h5py

    for key, val in data.items():
        if isinstance(val, Mapping):
            _write_tree(group.require_group(key), val, dlen, compression)
            continue
        if isinstance(val, list) or (isinstance(val, np.ndarray) and val.dtype == object):
            items = [np.asarray(v) for v in val]
            sub = _h5_dtype(items[0].dtype, dlen)
            arr = np.empty(len(items), dtype=object)
            for i, v in enumerate(items):
                arr[i] = v.astype(sub)
            group.create_dataset(key, data=arr, dtype=h5py.vlen_dtype(sub), compression=compression)
            continue
        val = np.asarray(val)
        group.create_dataset(
            key, data=val, dtype=_h5_dtype(val.dtype, dlen), compression=compression
        )


def _duplicates(data: Mapping[str, Any], group: Any, prefix: str = "") -> list[str]:
    import h5py

    dups = []
    for key, val in data.items():
        if key not in group:
            continue
        if isinstance(val, Mapping) and isinstance(group[key], h5py.Group):
            dups += _duplicates(val, group[key], f"{prefix}{key}/")
        else:
            dups.append(prefix + key)
    return dups


def save_to_h5(
    data_dict: Mapping[str, Any],
    save_path: str | Path,
    overwrite: bool = False,
    dlen: int = 32,
    compression: Any = "gzip",
) -> None:
    """Add ``data_dict`` (nested dicts -> groups) to the h5 file ``save_path``, as nlb_tools.

    Numbers are stored as ``float{dlen}`` / ``int{dlen}``. Keys already in the file are
    replaced when ``overwrite``; otherwise nothing is written and a warning is logged.
    The file is rewritten atomically (a copy is updated, then renamed into place).
    """
    import h5py

    from nlbsuite.fileio import atomic_path

    path = Path(save_path)
    if path.exists():
        try:
            with h5py.File(path, "r") as f:
                dups = _duplicates(data_dict, f)
        except OSError:
            raise UserError(f"{path}: not an HDF5 file") from None
        if dups and not overwrite:
            logger.warning(
                f"{dups} already found in {path}. Save to file canceled. "
                "Please set `overwrite=True` or specify a different file path."
            )
            return
    with atomic_path(path) as tmp:
        if path.exists():
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "a") as f:
            for name in _duplicates(data_dict, f):
                del f[name]
            _write_tree(f, data_dict, dlen, compression)


def evaluate(
    test_annotation_file: str | Path | Mapping[str, Any],
    user_submission_file: str | Path | Mapping[str, Any],
) -> list[dict[str, dict[str, float]]]:
    """``nlb_tools.evaluation.evaluate``: ``[{"mc_maze_split": {"co-bps": ..., ...}}, ...,
    {"mc_maze_scaling_split": {"[100] co-bps": ...}}]`` for every key in both files/dicts."""
    from nlbsuite.scoring import score_submission

    return score_submission(test_annotation_file, user_submission_file)
