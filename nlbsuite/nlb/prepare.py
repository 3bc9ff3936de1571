"""NLB dataset -> :class:`~nlbsuite.data.PhaseData`: find files, build tensors, cache, export.

``build_tensors`` is the equivalent of the usual nlb_tools recipe::

    dataset = NWBDataset(folder); dataset.resample(bin_width)
    make_train_input_tensors(dataset, name, "train" | ["train", "val"],
                             include_behavior=True, include_forward_pred=True)
    make_eval_input_tensors(dataset, name, "val" | "test")
    make_eval_target_tensors(dataset, name, "train", "val", include_psth=True)  # val only

and returns the three dicts under nlb_tools' keys.
"""

from __future__ import annotations

import itertools
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from nlbsuite.catalog import DatasetKey, check_bin_width, check_phase, get_card
from nlbsuite.data import EvalTarget, GroundTruth, PhaseData
from nlbsuite.errors import UserError
from nlbsuite.fileio import atomic_path
from nlbsuite.nlb.nwb import Recording, read_recording
from nlbsuite.nlb.specs import DatasetSpec, get_spec
from nlbsuite.nlb.tensors import (
    Binned,
    behavior_bins,
    bin_recording,
    make_eval_input,
    make_eval_target,
    make_train_input,
    split_mask,
    trial_windows,
)

TensorDicts = tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]


def data_dir() -> Path:
    """Where NLB files live: ``$NLBSUITE_DATA``, else the user cache dir of nlbsuite."""
    env = os.environ.get("NLBSUITE_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nlbsuite")) / "data"


def find_nwb_files(spec: DatasetSpec, root: Path | None = None) -> list[Path]:
    """The dataset's NWB files under ``<root>/<dandiset>/`` (as ``dandi download`` lays
    them out); :class:`UserError` with the fetch hint when there are none."""
    root = data_dir() if root is None else Path(root)
    folder = root / spec.dandiset
    files = (
        sorted(p for p in folder.rglob("*.nwb") if not p.name.startswith("."))
        if folder.is_dir()
        else []
    )
    if not files:
        raise UserError(
            f"{folder}: no NWB files for {spec.name} (run 'nlbsuite fetch {spec.name}', "
            "or pass the files: --nwb on the command line, nwb_paths= in Python)"
        )
    return files


def phase_masks(rec: Recording, phase: str) -> tuple[np.ndarray, np.ndarray]:
    """Train and eval trial masks of a phase (val: train/val; test: train+val/test)."""
    if phase == "val":
        return split_mask(rec, ("train",)), split_mask(rec, ("val",))
    return split_mask(rec, ("train", "val")), split_mask(rec, ("test",))


def build_tensors(
    rec: Recording, spec: DatasetSpec, bin_ms: int, phase: str, seed: int = 0
) -> TensorDicts:
    """(train_input, eval_input, eval_target) dicts as nlb_tools builds them.

    ``eval_target`` is ``{key: {...}}`` in the val phase and None in the test phase.
    """
    check_bin_width(bin_ms)
    check_phase(phase)
    field = spec.behavior_field if spec.behavior_source == "data" else None
    train_mask, eval_mask = phase_masks(rec, phase)
    needed = None
    if field is not None and spec.jitter is None:  # behaviour only where windows need it
        pairs = [(spec.input_window, train_mask)]
        if phase == "val":
            pairs += [(spec.target_window, train_mask), (spec.target_window, eval_mask)]
        needed = behavior_bins(rec, spec, bin_ms, pairs)
    binned = bin_recording(rec, bin_ms, field, needed)
    if not eval_mask.any():
        raise UserError(
            f"{rec.paths[0]}: no '{'val' if phase == 'val' else 'test'}' trials for the "
            f"{phase} phase (splits present: {', '.join(sorted(set(rec.trials.split)))})"
        )
    if train_mask.any():
        train = make_train_input(rec, binned, spec, train_mask, seed)
    else:
        train = _empty_train(rec, binned, spec, eval_mask)
    evals = make_eval_input(rec, binned, spec, eval_mask, seed)
    target = None
    if phase == "val":
        if not train_mask.any():
            raise UserError(f"{rec.paths[0]}: no 'train' trials for the val phase")
        body = make_eval_target(rec, binned, spec, train_mask, eval_mask, seed)
        target = {str(DatasetKey(spec.name, bin_ms)): body}
    return train, evals, target


def _empty_train(
    rec: Recording, binned: Binned, spec: DatasetSpec, eval_mask: np.ndarray
) -> dict[str, Any]:
    """Zero-trial train tensors shaped like the eval trials (a test file on its own)."""
    win = trial_windows(rec, eval_mask, spec.input_window, binned.bin_ms, binned.n_bins)
    n_bins = int(win.length[0]) if len(win.length) else 0
    n_fwd = spec.fp_len_ms // binned.bin_ms
    n_in = binned.heldin.shape[0]
    n_out = 0 if binned.heldout is None else binned.heldout.shape[0]
    return {
        "train_spikes_heldin": np.zeros((0, n_bins, n_in), np.float32),
        "train_spikes_heldout": np.zeros((0, n_bins, n_out), np.float32),
        "train_spikes_heldin_forward": np.zeros((0, n_fwd, n_in), np.float32),
        "train_spikes_heldout_forward": np.zeros((0, n_fwd, n_out), np.float32),
    }


def to_phase_data(
    spec: DatasetSpec,
    bin_ms: int,
    phase: str,
    tensors: TensorDicts,
    source: str,
    truth: GroundTruth | None = None,
    meta: dict[str, Any] | None = None,
) -> PhaseData:
    """Wrap the three dicts in a :class:`PhaseData` (target only in the val phase)."""
    train, evals, target = tensors
    et = None
    if target is not None:
        body = dict(next(iter(target.values())))
        for k in ("eval_cond_idx", "train_cond_idx"):
            if k in body:
                body[k] = [np.asarray(ix) for ix in body[k]]
        et = EvalTarget(**body)
    return PhaseData(
        dataset=spec.name,
        bin_width_ms=bin_ms,
        phase=phase,
        train_spikes_heldin=train["train_spikes_heldin"],
        train_spikes_heldout=train["train_spikes_heldout"],
        eval_spikes_heldin=evals["eval_spikes_heldin"],
        train_spikes_heldin_forward=train.get("train_spikes_heldin_forward"),
        train_spikes_heldout_forward=train.get("train_spikes_heldout_forward"),
        train_behavior=train.get("train_behavior"),
        eval_spikes_heldout=evals.get("eval_spikes_heldout"),
        target=et,
        truth=truth,
        source=source,
        meta=dict(meta or {}),
    )


def load_nlb(
    dataset: str,
    phase: str = "val",
    bin_width_ms: int = 5,
    nwb_paths: list[Path] | None = None,
    data_dir: Path | None = None,
    seed: int = 0,
    use_cache: bool = True,
) -> PhaseData:
    """One NLB dataset at one bin width and phase, from its NWB files.

    Files: ``nwb_paths`` if given, else every ``*.nwb`` under ``<data_dir>/<dandiset>/``
    (``data_dir`` defaults to ``$NLBSUITE_DATA`` or the user cache dir). Several files are
    joined as nlb_tools joins a folder. Tensors equal nlb_tools'; the val phase carries the
    evaluation target (PSTHs included), the test phase none. Cached by content.
    """
    from nlbsuite.nlb import cache

    spec = get_spec(dataset)
    check_bin_width(bin_width_ms)
    check_phase(phase)
    root = data_dir
    paths = [Path(p) for p in nwb_paths] if nwb_paths else find_nwb_files(spec, root)
    for p in paths:
        if not p.is_file():
            raise UserError(f"{p}: NWB file not found")
    key = cache.key_for(spec, bin_width_ms, phase, seed, paths) if use_cache else None
    if key is not None:
        hit = cache.load(key)
        if hit is not None:
            return hit
    rec = read_recording(paths, (spec.behavior_field,) if spec.behavior_source == "data" else ())
    tensors = build_tensors(rec, spec, bin_width_ms, phase, seed)
    truth = _truth(rec, spec, bin_width_ms, phase, seed)
    data = to_phase_data(
        spec,
        bin_width_ms,
        phase,
        tensors,
        source=", ".join(str(p) for p in rec.paths),
        truth=truth,
        meta={"nwb_files": [str(p) for p in rec.paths], "seed": seed},
    )
    if key is not None:
        cache.store(key, data)
    return data


def _truth(
    rec: Recording, spec: DatasetSpec, bin_ms: int, phase: str, seed: int
) -> GroundTruth | None:
    from nlbsuite.nlb.truth import ground_truth

    return ground_truth(rec, spec, bin_ms, phase, seed)


# ----------------------------------------------------------------------------------------
# Export in nlb_tools' save_to_h5 layout
# ----------------------------------------------------------------------------------------


#: Deflate level of exported arrays: nlb_tools writes 4; 1 holds the same content in ~15%
#: larger files and compresses about twice as fast.
GZIP_LEVEL = 1
_CHUNK_BYTES = 1 << 20


def write_gzip(group: h5py.Group, key: str, arr: np.ndarray) -> None:
    """``group[key] = arr``, gzip-compressed like h5py's ``compression="gzip"``, in chunks
    of whole trials (first axis) deflated on a thread per core (zlib releases the GIL) and
    written as they are; any HDF5 reader inflates them. Scalars and empty arrays are
    written plainly."""
    arr = np.asarray(arr, order="C")
    if arr.ndim == 0 or arr.size == 0:
        group.create_dataset(key, data=arr)
        return
    rows = max(1, min(arr.shape[0], _CHUNK_BYTES // max(1, arr[0].nbytes)))
    chunk = (rows, *arr.shape[1:])  # whole trials, ~1 MiB: few chunks, few tasks
    dset = group.create_dataset(
        key, arr.shape, arr.dtype, chunks=chunk, compression="gzip", compression_opts=GZIP_LEVEL
    )
    starts = list(
        itertools.product(*(range(0, n, c) for n, c in zip(arr.shape, chunk, strict=True)))
    )

    def deflate(start: tuple[int, ...]) -> bytes:
        piece = arr[tuple(slice(s, s + c) for s, c in zip(start, chunk, strict=True))]
        if piece.shape != chunk:  # an edge chunk is stored whole, zero-padded
            block = np.zeros(chunk, dtype=arr.dtype)
            block[tuple(slice(0, n) for n in piece.shape)] = piece
            piece = block
        return zlib.compress(np.ascontiguousarray(piece).tobytes(), GZIP_LEVEL)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for start, blob in zip(starts, pool.map(deflate, starts), strict=True):
            dset.id.write_direct_chunk(start, blob)


def _h5_write(group: h5py.Group, data: dict[str, Any]) -> None:
    """nlb_tools' ``_save_h5_r`` with ``dlen=32``: float32/int32, ragged int lists as vlen."""
    for key, val in data.items():
        if isinstance(val, dict):
            _h5_write(group.require_group(key), val)
            continue
        if isinstance(val, list):
            dtype = h5py.vlen_dtype(np.dtype("int32"))
            arr = np.empty(len(val), dtype=object)
            for i, v in enumerate(val):
                arr[i] = np.asarray(v, dtype=np.int32)
            group.create_dataset(key, data=arr, dtype=dtype, compression="gzip")
            continue
        val = np.asarray(val)
        dtype = val.dtype
        if np.issubdtype(dtype, np.floating):
            dtype = np.dtype("float32")
        elif np.issubdtype(dtype, np.integer):
            dtype = np.dtype("int32")
        write_gzip(group, key, val.astype(dtype, copy=False))


def write_h5_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _h5_write(f, data)


def export(data: PhaseData, out_dir: str | Path) -> list[Path]:
    """Write ``train_input.h5``, ``eval_input.h5`` and (val phase) ``eval_target.h5``.

    Keys and nesting are those nlb_tools' ``save_to_h5`` writes for
    ``make_train_input_tensors`` / ``make_eval_input_tensors`` / ``make_eval_target_tensors``
    (the target nested under the dataset key, e.g. ``mc_maze_20``).
    """
    out = Path(out_dir)
    train = {
        k: v
        for k, v in {
            "train_spikes_heldin": data.train_spikes_heldin,
            "train_spikes_heldout": data.train_spikes_heldout,
            "train_behavior": data.train_behavior,
            "train_spikes_heldin_forward": data.train_spikes_heldin_forward,
            "train_spikes_heldout_forward": data.train_spikes_heldout_forward,
        }.items()
        if v is not None
    }
    evals = {"eval_spikes_heldin": data.eval_spikes_heldin}
    if data.eval_spikes_heldout is not None:
        evals["eval_spikes_heldout"] = data.eval_spikes_heldout
    written = []
    for name, content in (("train_input.h5", train), ("eval_input.h5", evals)):
        write_h5_atomic(out / name, content)
        written.append(out / name)
    if data.target is not None:
        write_h5_atomic(out / "eval_target.h5", {data.key: data.target.arrays()})
        written.append(out / "eval_target.h5")
    return written


# ----------------------------------------------------------------------------------------
# Synthetic sessions in a dataset's layout
# ----------------------------------------------------------------------------------------


def layout_of(dataset: str) -> str:
    """The synthetic layout matching an NLB dataset (``mc_maze_small`` -> ``mc_maze``)."""
    get_spec(dataset)  # an NLB dataset, else UserError
    return get_card(dataset).layout


def synthetic_paths(
    dataset: str, seed: int = 0, n_trials: int = 100, n_neurons: int = 40, root: Path | None = None
) -> list[Path]:
    """NWB files of a synthetic session in ``dataset``'s layout, written once and reused.

    Stored under ``<root or data dir>/synthetic/<layout>_<trials>x<neurons>_seed<seed>/``;
    the folder is completed under a temporary name and renamed, so it is all or nothing.
    """
    import shutil

    from nlbsuite.nlb.synthetic import SyntheticSpec, write_synthetic

    layout = layout_of(dataset)
    base = (Path(root) if root is not None else data_dir()) / "synthetic"
    folder = base / f"{layout}_{n_trials}x{n_neurons}_seed{seed}"
    if not folder.is_dir():
        tmp = base / f".{folder.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write_synthetic(
            tmp, SyntheticSpec(layout=layout, n_trials=n_trials, n_neurons=n_neurons, seed=seed)
        )
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(p for p in folder.rglob("*.nwb") if not p.name.startswith("."))
