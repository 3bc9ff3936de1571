"""Data containers shared by every dataset, model and metric.

Axis order, everywhere in nlbsuite: **(trial, time, neuron)** for spikes and rates,
(trial, time, dim) for behaviour. Spike counts are per bin; rates are expected counts per
bin (not Hz), as in nlb_tools. Field names are nlb_tools' h5 key names, so a container maps
one-to-one onto ``train_input.h5`` / ``eval_input.h5`` / ``eval_target.h5`` files.

- :class:`PhaseData` — one dataset at one bin width and phase: model inputs, the hidden
  evaluation target and, for synthetic data, the ground truth.
- :class:`EvalTarget` — what the official evaluator scores against (nlb_tools'
  ``make_eval_target_tensors`` content for one dataset key).
- :class:`GroundTruth` — true rates (and latents) where they are known.
- :class:`Rates` — a model's prediction: the six arrays of an NLB submission.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nlbsuite.catalog import DatasetKey, check_phase, guess_dataset
from nlbsuite.errors import UserError, require

if TYPE_CHECKING:  # pragma: no cover
    import h5py

@dataclass
class EvalTarget:
    """Evaluation data for one dataset key, as nlb_tools' ``make_eval_target_tensors``.

    Shapes: spikes (trial, time, neuron) with NaN outside the scored window (DMFC_RSG);
    behaviour (trial, time, dim) or (trial, field) for DMFC_RSG's trial-table behaviour;
    decode masks (trial, mask); psth (condition, time, neuron_heldin + neuron_heldout);
    cond_idx: one index array per condition; jitter: (trial,) in bins.
    """

    eval_spikes_heldout: np.ndarray
    eval_spikes_heldin_forward: np.ndarray | None = None
    eval_spikes_heldout_forward: np.ndarray | None = None
    train_behavior: np.ndarray | None = None
    eval_behavior: np.ndarray | None = None
    train_decode_mask: np.ndarray | None = None
    eval_decode_mask: np.ndarray | None = None
    psth: np.ndarray | None = None
    eval_cond_idx: list[np.ndarray] | None = None
    train_cond_idx: list[np.ndarray] | None = None
    eval_jitter: np.ndarray | None = None
    train_jitter: np.ndarray | None = None

    def arrays(self) -> dict[str, Any]:
        """Present fields by nlb_tools key name (None fields left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class GroundTruth:
    """True rates (expected counts per bin) where the generator knows them.

    Same shapes as the matching :class:`Rates` fields; ``*_latents`` are (trial, time, dim).
    """

    train_rates_heldin: np.ndarray
    train_rates_heldout: np.ndarray
    eval_rates_heldin: np.ndarray
    eval_rates_heldout: np.ndarray
    eval_rates_heldin_forward: np.ndarray | None = None
    eval_rates_heldout_forward: np.ndarray | None = None
    train_latents: np.ndarray | None = None
    eval_latents: np.ndarray | None = None

    def as_rates(self) -> Rates:
        """The true rates as a prediction (the ceiling a model can reach)."""
        return Rates(
            train_rates_heldin=self.train_rates_heldin,
            train_rates_heldout=self.train_rates_heldout,
            eval_rates_heldin=self.eval_rates_heldin,
            eval_rates_heldout=self.eval_rates_heldout,
            eval_rates_heldin_forward=self.eval_rates_heldin_forward,
            eval_rates_heldout_forward=self.eval_rates_heldout_forward,
        )


@dataclass
class Rates:
    """A model's predicted rates: the six arrays of an NLB submission, (trial, time, neuron).

    ``train_*`` cover the train trials, ``eval_*`` the eval trials; ``*_forward`` the
    forward-prediction window after each eval trial.
    """

    train_rates_heldin: np.ndarray | None
    train_rates_heldout: np.ndarray | None
    eval_rates_heldin: np.ndarray
    eval_rates_heldout: np.ndarray
    eval_rates_heldin_forward: np.ndarray | None = None
    eval_rates_heldout_forward: np.ndarray | None = None

    @classmethod
    def from_full(
        cls, train: np.ndarray | None, eval: np.ndarray, n_heldin: int, n_bins: int
    ) -> Rates:
        """Split full predictions into the six arrays.

        ``train``: (trial, time [+ forward], heldin + heldout); ``eval``: (trial,
        time + forward, heldin + heldout). Bins past ``n_bins`` are the forward window.
        """
        fwd_in = eval[:, n_bins:, :n_heldin] if eval.shape[1] > n_bins else None
        fwd_out = eval[:, n_bins:, n_heldin:] if eval.shape[1] > n_bins else None
        return cls(
            train_rates_heldin=None if train is None else train[:, :n_bins, :n_heldin],
            train_rates_heldout=None if train is None else train[:, :n_bins, n_heldin:],
            eval_rates_heldin=eval[:, :n_bins, :n_heldin],
            eval_rates_heldout=eval[:, :n_bins, n_heldin:],
            eval_rates_heldin_forward=fwd_in,
            eval_rates_heldout_forward=fwd_out,
        )

    def check(self, data: PhaseData) -> None:
        """Raise :class:`UserError` unless every array ``data`` needs is present with
        :meth:`PhaseData.rate_shapes` and passes the submission rules (the one validator,
        :func:`nlbsuite.scoring.rules.group_problems`): finite, non-negative, not all zero."""
        from nlbsuite.scoring.rules import check_prediction

        check_prediction(data.key, self.arrays(), data.rate_shapes(), "predicted rates")

    def arrays(self) -> dict[str, np.ndarray]:
        """Present arrays by submission key name."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _read_only(a: np.ndarray | None) -> np.ndarray | None:
    """A read-only view of ``a``; of a copy when ``a`` is a view into a larger buffer, whose
    other entries (e.g. held-out neurons) its ``base`` would expose."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.base is not None and getattr(a.base, "nbytes", None) != a.nbytes:
        a = a.copy()
    view = a.view()
    view.flags.writeable = False
    return view


@dataclass
class PhaseData:
    """One dataset at one bin width and phase: everything a run needs.

    Model inputs (the ``train_*`` and ``eval_spikes_heldin`` fields) are (trial, time,
    neuron) spike counts; ``*_forward`` cover the forward window after each train trial.
    ``eval_spikes_heldout`` is set in the val phase of tensor files that carry it (it is
    the model-input-aligned version; scoring uses ``target.eval_spikes_heldout``).
    ``target`` is hidden from models; ``truth`` exists for synthetic data only.
    ``forward_bins`` keeps the forward window's length in a :meth:`model_input` whose data
    carries no forward spikes.
    """

    dataset: str
    bin_width_ms: int
    phase: str
    train_spikes_heldin: np.ndarray
    train_spikes_heldout: np.ndarray
    eval_spikes_heldin: np.ndarray
    train_spikes_heldin_forward: np.ndarray | None = None
    train_spikes_heldout_forward: np.ndarray | None = None
    train_behavior: np.ndarray | None = None
    eval_spikes_heldout: np.ndarray | None = None
    target: EvalTarget | None = None
    truth: GroundTruth | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    forward_bins: int | None = None

    @property
    def key(self) -> str:
        """NLB dataset key, e.g. ``mc_maze_small`` or ``mc_maze_small_20``."""
        return str(DatasetKey(self.dataset, self.bin_width_ms))

    @property
    def n_heldin(self) -> int:
        return self.train_spikes_heldin.shape[2]

    @property
    def n_heldout(self) -> int:
        return self.train_spikes_heldout.shape[2]

    @property
    def n_bins(self) -> int:
        """Bins per trial of the model-input window (without the forward window)."""
        return self.train_spikes_heldin.shape[1]

    @property
    def n_forward(self) -> int:
        """Bins of the forward-prediction window (0 if the data has none)."""
        fwd = self.train_spikes_heldin_forward
        if fwd is not None:
            return fwd.shape[1]
        if self.target is not None and self.target.eval_spikes_heldin_forward is not None:
            return self.target.eval_spikes_heldin_forward.shape[1]
        return self.forward_bins or 0

    def rate_shapes(self) -> dict[str, tuple[int, int, int]]:
        """Shape of each :class:`Rates` array a prediction for this data must have."""
        n_train, n_eval = self.train_spikes_heldin.shape[0], self.eval_spikes_heldin.shape[0]
        shapes = {
            "train_rates_heldin": (n_train, self.n_bins, self.n_heldin),
            "train_rates_heldout": (n_train, self.n_bins, self.n_heldout),
            "eval_rates_heldin": (n_eval, self.n_bins, self.n_heldin),
            "eval_rates_heldout": (n_eval, self.n_bins, self.n_heldout),
        }
        if self.n_forward:
            shapes["eval_rates_heldin_forward"] = (n_eval, self.n_forward, self.n_heldin)
            shapes["eval_rates_heldout_forward"] = (n_eval, self.n_forward, self.n_heldout)
        return shapes

    def model_input(self) -> PhaseData:
        """All a model may see: the model-input arrays as read-only views, with the dataset
        name, bin width, phase and sizes; no evaluation target, ground truth, eval held-out
        spikes, source or metadata (file paths, generator seeds, condition labels)."""
        return PhaseData(
            dataset=self.dataset,
            bin_width_ms=self.bin_width_ms,
            phase=self.phase,
            train_spikes_heldin=_read_only(self.train_spikes_heldin),
            train_spikes_heldout=_read_only(self.train_spikes_heldout),
            eval_spikes_heldin=_read_only(self.eval_spikes_heldin),
            train_spikes_heldin_forward=_read_only(self.train_spikes_heldin_forward),
            train_spikes_heldout_forward=_read_only(self.train_spikes_heldout_forward),
            train_behavior=_read_only(self.train_behavior),
            forward_bins=None if self.train_spikes_heldin_forward is not None else self.n_forward,
        )

    def train_spikes_full(self) -> np.ndarray:
        """Train spikes (trial, time + forward, heldin + heldout), the usual model target."""
        parts = [np.concatenate([self.train_spikes_heldin, self.train_spikes_heldout], axis=2)]
        if self.train_spikes_heldin_forward is not None:
            parts.append(
                np.concatenate(
                    [self.train_spikes_heldin_forward, self.train_spikes_heldout_forward], axis=2
                )
            )
        return np.concatenate(parts, axis=1)

    def summary(self) -> str:
        return (
            f"{self.key} ({self.phase}): {self.train_spikes_heldin.shape[0]} train / "
            f"{self.eval_spikes_heldin.shape[0]} eval trials x {self.n_bins} bins "
            f"(+{self.n_forward} forward) x {self.n_heldin} held-in + {self.n_heldout} "
            f"held-out neurons at {self.bin_width_ms} ms"
        )


# ----------------------------------------------------------------------------------------
# Tensor files in nlb_tools' h5 layout
# ----------------------------------------------------------------------------------------

_INPUT_KEYS = {
    "train_spikes_heldin",
    "train_spikes_heldout",
    "train_spikes_heldin_forward",
    "train_spikes_heldout_forward",
    "train_behavior",
    "eval_spikes_heldin",
    "eval_spikes_heldout",
}
def _read_group(group: h5py.Group) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    for key, item in group.items():
        out[key] = _read_group(item) if isinstance(item, h5py.Group) else item[()]
    return out


def read_h5(path: str | Path) -> dict[str, Any]:
    """Read an HDF5 file into nested dicts of arrays, with clear errors for bad files."""
    path = Path(path)
    require(path.exists(), f"{path}: file not found")
    require(path.stat().st_size > 0, f"{path}: file is empty (expected an HDF5 file)")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _read_group(f)
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 file ({exc})") from None


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) if np.issubdtype(np.asarray(x).dtype, np.number) else x


def phase_data_from_h5(
    path: str | Path,
    dataset: str | None = None,
    bin_width_ms: int | None = None,
    phase: str | None = None,
    target_path: str | Path | None = None,
) -> PhaseData:
    """Load tensors in nlb_tools' h5 layout into a :class:`PhaseData`.

    ``path`` holds ``train_spikes_heldin`` etc. (train_input + eval_input merged, or a
    single file with all keys). If it has ``eval_spikes_heldout`` the eval trials can be
    scored (co-bps). ``target_path`` optionally names an ``eval_target.h5`` whose group for
    this dataset key becomes the :class:`EvalTarget`. Dataset, bin width and phase default to
    what the file name says (``mc_maze_small_val_tensors.h5`` -> mc_maze_small, val) and to the
    bin width implied by the trial length.
    """
    path = Path(path)
    raw = read_h5(path)
    for key in ("train_spikes_heldin", "train_spikes_heldout", "eval_spikes_heldin"):
        require(
            key in raw and isinstance(raw[key], np.ndarray),
            f"{path}: missing key '{key}' (expected an nlb_tools tensor file with "
            "train_spikes_heldin, train_spikes_heldout, eval_spikes_heldin, ...)",
        )
    arrays = {k: _as_float(v) for k, v in raw.items() if k in _INPUT_KEYS}
    for key, arr in arrays.items():
        require(
            arr.dtype.kind == "f"
            and (arr.ndim == 3 or (key == "train_behavior" and arr.ndim == 2)),
            f"{path}: key '{key}' must be a numeric (trial, time, neuron) array, got "
            f"dtype {arr.dtype} shape {arr.shape}",
        )
    tr_in, tr_out, ev_in = (
        arrays["train_spikes_heldin"],
        arrays["train_spikes_heldout"],
        arrays["eval_spikes_heldin"],
    )
    require(
        tr_in.shape[:2] == tr_out.shape[:2],
        f"{path}: train_spikes_heldout shape {tr_out.shape} does not match "
        f"train_spikes_heldin {tr_in.shape} in trials and time",
    )
    require(
        ev_in.shape[1:] == tr_in.shape[1:],
        f"{path}: eval_spikes_heldin shape {ev_in.shape} must match train_spikes_heldin "
        f"{tr_in.shape} in time and neurons",
    )
    name = dataset or guess_dataset(path.stem) or path.stem
    if phase is None:
        phase = "test" if "test" in path.stem.lower() else "val"
    check_phase(phase)
    if bin_width_ms is None:
        bin_width_ms = 20 if "_20" in path.stem else 5
    ev_out = arrays.get("eval_spikes_heldout")
    fwd_in = arrays.get("train_spikes_heldin_forward")
    fwd_out = arrays.get("train_spikes_heldout_forward")
    target = None
    if target_path is not None:
        target = eval_target_from_h5(target_path, str(DatasetKey(name, bin_width_ms)))
    elif ev_out is not None:
        target = EvalTarget(eval_spikes_heldout=ev_out)
    return PhaseData(
        dataset=name,
        bin_width_ms=bin_width_ms,
        phase=phase,
        train_spikes_heldin=tr_in,
        train_spikes_heldout=tr_out,
        eval_spikes_heldin=ev_in,
        train_spikes_heldin_forward=fwd_in,
        train_spikes_heldout_forward=fwd_out,
        train_behavior=arrays.get("train_behavior"),
        eval_spikes_heldout=ev_out,
        target=target,
        source=str(path),
    )


def eval_target_from_h5(path: str | Path, key: str) -> EvalTarget:
    """Read the group ``key`` (e.g. ``mc_maze_small``) of an nlb_tools eval-target file."""
    raw = read_h5(path)
    require(
        key in raw and isinstance(raw[key], dict),
        f"{path}: no group '{key}' (groups present: {', '.join(sorted(raw)) or 'none'})",
    )
    group = raw[key]
    require(
        "eval_spikes_heldout" in group,
        f"{path}: group '{key}' has no 'eval_spikes_heldout'",
    )
    known = {f.name for f in dataclasses.fields(EvalTarget)}
    kwargs = {k: v for k, v in group.items() if k in known}
    for k in ("eval_cond_idx", "train_cond_idx"):
        if k in kwargs:
            kwargs[k] = [np.asarray(ix) for ix in kwargs[k]]
    return EvalTarget(**kwargs)


# ----------------------------------------------------------------------------------------
# Rebinning
# ----------------------------------------------------------------------------------------


def _sum_bins(x: np.ndarray | None, factor: int, what: str) -> np.ndarray | None:
    """(trial, time, neuron) counts summed over groups of ``factor`` bins along time; NaN
    where the group's first bin is NaN (nlb_tools' ``resample`` rule for spikes)."""
    if x is None:
        return None
    require(
        x.shape[1] % factor == 0,
        f"rebin: '{what}' has {x.shape[1]} bins, not a multiple of the factor {factor}",
    )
    grouped = x.reshape(x.shape[0], x.shape[1] // factor, factor, *x.shape[2:])
    out = np.nansum(grouped, axis=2)
    first = grouped[:, :, 0]
    return np.where(np.isnan(first), np.nan, out) if np.isnan(first).any() else out


def _mean_bins(x: np.ndarray | None, factor: int, what: str) -> np.ndarray | None:
    """(trial, time, dim) signal averaged over groups of ``factor`` bins; 2-D arrays
    (trial, field) are per-trial values and pass unchanged."""
    if x is None or x.ndim != 3:
        return x
    require(
        x.shape[1] % factor == 0,
        f"rebin: '{what}' has {x.shape[1]} bins, not a multiple of the factor {factor}",
    )
    return x.reshape(x.shape[0], x.shape[1] // factor, factor, x.shape[2]).mean(axis=2)


def rebin(data: PhaseData, factor: int) -> PhaseData:
    """``data`` at ``factor`` times its bin width: every spike count (model inputs, forward
    windows, eval targets) and true rate is summed over consecutive groups of ``factor``
    bins from each trial's first bin, PSTHs (expected counts per bin) too; behaviour and
    latents are averaged over the group. Every time axis must be a multiple of ``factor``.

    This approximates building the tensors at the wider bin from the NWB session: spike
    sums are the same counts when trial starts fall on the wider grid; behaviour is a
    group mean rather than nlb_tools' FIR decimation of the continuous signal. Data whose
    target has jitter (DMFC_RSG) is refused: build it from NWB files at the wanted bin.
    """
    require(factor >= 1, f"rebin: factor must be a positive integer, got {factor}")
    if factor == 1:
        return data
    target = data.target
    if target is not None:
        require(
            target.eval_jitter is None and target.train_jitter is None,
            f"rebin: {data.key} has jittered trials; build it at the wanted bin width "
            "from the NWB files (nlbsuite prepare --bin)",
        )
        target = dataclasses.replace(
            target,
            eval_spikes_heldout=_sum_bins(
                target.eval_spikes_heldout, factor, "eval_spikes_heldout"
            ),
            eval_spikes_heldin_forward=_sum_bins(
                target.eval_spikes_heldin_forward, factor, "eval_spikes_heldin_forward"
            ),
            eval_spikes_heldout_forward=_sum_bins(
                target.eval_spikes_heldout_forward, factor, "eval_spikes_heldout_forward"
            ),
            train_behavior=_mean_bins(target.train_behavior, factor, "train_behavior"),
            eval_behavior=_mean_bins(target.eval_behavior, factor, "eval_behavior"),
            psth=_sum_bins(target.psth, factor, "psth"),
        )
    truth = data.truth
    if truth is not None:
        summed = {
            f.name: _sum_bins(getattr(truth, f.name), factor, f.name)
            for f in dataclasses.fields(truth)
            if f.name.endswith(("heldin", "heldout", "forward"))
        }
        latents = {
            k: _mean_bins(getattr(truth, k), factor, k) for k in ("train_latents", "eval_latents")
        }
        truth = dataclasses.replace(truth, **summed, **latents)
    width = data.bin_width_ms * factor
    spikes = {
        name: _sum_bins(getattr(data, name), factor, name)
        for name in (
            "train_spikes_heldin",
            "train_spikes_heldout",
            "eval_spikes_heldin",
            "train_spikes_heldin_forward",
            "train_spikes_heldout_forward",
            "eval_spikes_heldout",
        )
    }
    note = f"summed over groups of {factor} bins: {data.bin_width_ms} -> {width} ms"
    return dataclasses.replace(
        data,
        **spikes,
        bin_width_ms=width,
        train_behavior=_mean_bins(data.train_behavior, factor, "train_behavior"),
        target=target,
        truth=truth,
        source=f"{data.source} ({note})" if data.source else note,
        meta={**data.meta, "rebinned_from_ms": data.bin_width_ms},
    )
