"""Declarative specs of the seven NLB'21 datasets (values of nlb_tools 0.0.4).

One :class:`DatasetSpec` per dataset, built only from frozen dataclasses, so a spec is
plain data: hashable, printable and serialisable (the cache key is made from it). The
values are those of ``nlb_tools.make_tensors.PARAMS``; the callables of PARAMS
(decode masks, behaviour mask, jitter, PSTH skip mask) are expressed as fields:

- Area2_Bump ``decode_masks``: ``decode_mask_field="ctr_hold_bump"`` -> columns
  ``[field == 0, field == 1]``.
- DMFC_RSG ``behavior_mask``: ``outlier_field="is_outlier"`` -> behaviour NaN where the
  field is not 0; PSTH ``skip_mask``: ``PsthSpec.skip_outliers`` -> trials with field == 1
  left out of the PSTHs.
- DMFC_RSG ``jitter``: :class:`JitterSpec` -> per trial a uniform draw in
  ``[0, clip(total_ms - tp, 0, max_ms)]`` (0 for test trials), in whole bins.

Times are milliseconds relative to an alignment field of the NWB trials table. A spec is
the tensor half of a dataset's card (:mod:`nlbsuite.catalog`): its identity (name, DANDI id,
pinned version, title) is read from the card, not repeated here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from nlbsuite.catalog import BUILTIN_CARDS
from nlbsuite.errors import UserError


@dataclass(frozen=True)
class Window:
    """A per-trial time window, as the arguments of nlb_tools' ``make_trial_data``.

    With ``align_range`` the window is ``[align + start, align + end)``; without it,
    ``[start_field, end_field)``. Unless ``allow_overlap``, a window is cut at the start
    of the next trial.
    """

    align_field: str | None = None
    align_range: tuple[int, int] | None = None
    start_field: str = "start_time"
    end_field: str = "end_time"
    allow_overlap: bool = False

    def shifted(self, lag_ms: int) -> Window:
        """The behaviour window: ``align_range`` moved by ``lag_ms`` (nlb_tools' _prep_behavior)."""
        if self.align_range is None:
            rng = (lag_ms, lag_ms)
        else:
            rng = (self.align_range[0] + lag_ms, self.align_range[1] + lag_ms)
        return dataclasses.replace(self, align_range=rng)

    def forward(self, fp_len_ms: int) -> Window:
        """The forward-prediction window after this one (nlb_tools' _prep_fp)."""
        align = self.align_field or self.end_field
        start = self.align_range[1] if self.align_range is not None else 0
        return Window(align_field=align, align_range=(start, start + fp_len_ms), allow_overlap=True)


@dataclass(frozen=True)
class PsthSpec:
    """Condition-averaged PSTHs of the evaluation target (nlb_tools' ``psth_params``)."""

    cond_fields: tuple[str, ...]
    window: Window
    kern_sd_ms: int
    pad: str = "back"
    seg_len_ms: int | None = None
    skip_outliers: bool = False


@dataclass(frozen=True)
class JitterSpec:
    """DMFC_RSG's random shift of the go-aligned input window of non-test trials.

    Upper bound per trial: ``clip(total_ms - trial[interval_field], 0, max_ms)``.
    """

    interval_field: str = "tp"
    total_ms: float = 1500.0
    max_ms: float = 300.0


@dataclass(frozen=True)
class DatasetSpec:
    """Everything needed to turn a dataset's NWB files into NLB tensors.

    ``input_window`` is nlb_tools' ``make_params`` (train and eval model inputs),
    ``target_window`` its ``eval_make_params`` (held-out eval spikes, eval behaviour,
    forward windows of the target). ``lag_ms`` shifts the behaviour window.
    """

    name: str
    dandiset: str
    version: str
    title: str
    input_window: Window
    target_window: Window
    behavior_source: str  # "data" (a TimeSeries) or "trial_info" (trials-table columns)
    behavior_fields: tuple[str, ...]
    lag_ms: int | None = None
    fp_len_ms: int = 200
    eval_pad: str = "back"
    eval_seg_len_ms: int | None = None
    psth: PsthSpec | None = None
    decode_mask_field: str | None = None
    outlier_field: str | None = None
    jitter: JitterSpec | None = None

    @property
    def behavior_field(self) -> str:
        """The TimeSeries name for ``behavior_source == "data"``."""
        return self.behavior_fields[0]

    def to_json(self) -> str:
        """Canonical JSON of the spec (used in cache keys)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


_MOVE = "move_onset_time"


_CARDS = {c.name: c for c in BUILTIN_CARDS if c.official}


def _identity(name: str) -> dict[str, str]:
    """The spec fields that come from the dataset's card."""
    card = _CARDS[name]
    return {"name": name, "dandiset": card.dandiset, "version": card.version, "title": card.title}


def _maze(name: str, lag: int, kern: int) -> DatasetSpec:
    window = Window(align_field=_MOVE, align_range=(-250, 450))
    return DatasetSpec(
        **_identity(name),
        input_window=window,
        target_window=window,
        behavior_source="data",
        behavior_fields=("hand_vel",),
        lag_ms=lag,
        psth=PsthSpec(cond_fields=("trial_type", "trial_version"), window=window, kern_sd_ms=kern),
    )


DATASETS: dict[str, DatasetSpec] = {
    "mc_maze": _maze("mc_maze", 100, 70),
    "mc_maze_large": _maze("mc_maze_large", 120, 50),
    "mc_maze_medium": _maze("mc_maze_medium", 120, 50),
    "mc_maze_small": _maze("mc_maze_small", 120, 50),
    "mc_rtt": DatasetSpec(
        **_identity("mc_rtt"),
        input_window=Window(align_field="start_time", align_range=(0, 600), allow_overlap=True),
        target_window=Window(align_field="start_time", align_range=(0, 600), allow_overlap=True),
        behavior_source="data",
        behavior_fields=("finger_vel",),
        lag_ms=140,
    ),
    "area2_bump": DatasetSpec(
        **_identity("area2_bump"),
        input_window=Window(align_field=_MOVE, align_range=(-100, 500)),
        target_window=Window(align_field=_MOVE, align_range=(-100, 500), allow_overlap=True),
        behavior_source="data",
        behavior_fields=("hand_vel",),
        lag_ms=-20,
        psth=PsthSpec(
            cond_fields=("cond_dir", "ctr_hold_bump"),
            window=Window(align_field=_MOVE, align_range=(-100, 500)),
            kern_sd_ms=40,
        ),
        decode_mask_field="ctr_hold_bump",
    ),
    "dmfc_rsg": DatasetSpec(
        **_identity("dmfc_rsg"),
        input_window=Window(align_field="go_time", align_range=(-1500, 0), allow_overlap=True),
        target_window=Window(align_field="go_time", start_field="set_time", end_field="go_time"),
        behavior_source="trial_info",
        behavior_fields=("is_eye", "theta", "is_short", "ts", "tp"),
        eval_pad="front",
        eval_seg_len_ms=1500,
        psth=PsthSpec(
            cond_fields=("is_eye", "theta", "is_short", "ts"),
            window=Window(align_field="go_time", start_field="set_time", end_field="go_time"),
            kern_sd_ms=70,
            pad="front",
            seg_len_ms=1500,
            skip_outliers=True,
        ),
        outlier_field="is_outlier",
        jitter=JitterSpec(),
    ),
}


def get_spec(dataset: str) -> DatasetSpec:
    """The spec of an NLB dataset by name; :class:`UserError` for an unknown name."""
    spec = DATASETS.get(dataset)
    if spec is None:
        raise UserError(
            f"unknown NLB dataset (expected one of {', '.join(DATASETS)})", "dataset", dataset
        )
    return spec
