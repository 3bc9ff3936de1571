"""The benchmark's facts in one place: dataset cards, dataset keys, phases, bin widths, metrics.

One declarative :class:`DatasetCard` per dataset says where it comes from (DANDI id and
pinned version), its phases and bin widths, its sizes, which metrics apply (behaviour metric
``vel R2`` or ``tp corr``, whether train rates are scored, membership of nlb_tools' MC_Maze
scaling split), its main metric and how it is loaded. Code reads these fields, never
dataset names. :class:`DatasetKey` is the one way to spell a dataset at a bin width
(``mc_maze_20``); :data:`METRICS` says what each metric means and which way is better.

Datasets register like models: built-in cards are listed here, third-party ones come from
the ``nlbsuite.datasets`` entry-point group, each entry naming a :class:`DatasetCard`::

    [project.entry-points."nlbsuite.datasets"]
    my_data = "my_package.data:CARD"   # DatasetCard(name="my_data", loader="my_package.data:load", ...)

The loader is called as ``load(card, phase=..., bin_width_ms=..., seed=..., nwb=...)`` and
returns a :class:`~nlbsuite.data.PhaseData`. How NLB tensors are cut from NWB files (windows,
lags, PSTH conditions) is the card's tensor spec, :data:`nlbsuite.nlb.specs.DATASETS`, which
takes its identity (DANDI id, version, title) from these cards.

Light to import (no numpy stack): the leaderboard, ``compare`` and the CLI read these facts
without importing the scorer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, NamedTuple

from nlbsuite.errors import UserError

PHASES = ("val", "test")
BIN_WIDTHS_MS = (5, 20)
ENTRY_POINT_GROUP = "nlbsuite.datasets"
DEFAULT_DATASET = "lorenz"  # what `run` and `load_dataset` use when no dataset is named


def check_phase(phase: str) -> str:
    """``phase`` if it is a benchmark phase ("val" or "test"), else :class:`UserError`."""
    if phase not in PHASES:
        raise UserError(f"expected one of {', '.join(PHASES)}", "phase", phase)
    return phase


def check_bin_width(bin_width_ms: int) -> int:
    """``bin_width_ms`` if it is an NLB bin width (5 or 20), else :class:`UserError`."""
    if bin_width_ms not in BIN_WIDTHS_MS:
        widths = " or ".join(map(str, BIN_WIDTHS_MS))
        raise UserError(f"expected {widths} (ms)", "bin_width_ms", bin_width_ms)
    return int(bin_width_ms)


# ----------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------


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
BEHAVIOR_METRICS = ("vel R2", "tp corr")
SCALING_SPLIT = "mc_maze_scaling"  # nlb_tools' split of the scaling datasets (``[500] co-bps``, ...)

SUBMISSION_KEYS = (
    "train_rates_heldin",
    "train_rates_heldout",
    "eval_rates_heldin",
    "eval_rates_heldout",
    "eval_rates_heldin_forward",
    "eval_rates_heldout_forward",
)


# ----------------------------------------------------------------------------------------
# Dataset cards
# ----------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class DatasetCard:
    """Everything the suite knows about one dataset, as data.

    ``metrics``: the official metrics it is scored on (a target may support fewer);
    ``scores_train_rates``: False where nlb_tools scores no train rates (no velocity
    decoding: DMFC_RSG); ``scaling_prefix``: its column prefix in nlb_tools'
    ``mc_maze_scaling_split`` (``"[500]"``), None outside the split; ``official``: one of
    NLB'21's seven datasets (a split of nlb_tools' ``evaluate``); ``decode_masks``: velocity
    decoders, one per decode mask, averaged (Area2_Bump: active and passive); ``shape``: fixed neuron and
    bin counts (None: any); ``test_sizes``: (train, eval) trials of the test phase;
    ``layout``: the NWB layout it shares (the scaling datasets are MC_Maze's); ``subject``:
    the NWB subject; ``loader``: ``"module:function"`` that builds its
    :class:`~nlbsuite.data.PhaseData`; ``default_bin_width_ms``: the bin width when none is
    asked for.
    """

    name: str
    title: str
    description: str
    loader: str
    dandiset: str | None = None
    version: str | None = None
    phases: tuple[str, ...] = PHASES
    bin_widths_ms: tuple[int, ...] = BIN_WIDTHS_MS
    default_bin_width_ms: int = 5
    metrics: tuple[str, ...] = ("co-bps", "vel R2", "psth R2", "fp-bps")
    main_metric: str = "co-bps"
    scores_train_rates: bool = True
    scaling_prefix: str | None = None
    decode_masks: int = 1
    official: bool = False
    shape: NLBShape | None = None
    test_sizes: tuple[int, int] | None = None
    layout: str | None = None
    subject: str | None = None

    @property
    def source(self) -> str:
        """Where the data comes from, in words (``DANDI 000128 (version 0.220113.0400)``)."""
        if self.dandiset is None:
            return "generated (no download)"
        return f"DANDI {self.dandiset}" + (f" (version {self.version})" if self.version else "")

    @property
    def behavior_metric(self) -> str | None:
        """``"vel R2"``, ``"tp corr"`` or None: how behaviour is scored."""
        return next((m for m in self.metrics if m in BEHAVIOR_METRICS), None)

    def key(self, bin_width_ms: int | None = None) -> DatasetKey:
        return DatasetKey(self.name, bin_width_ms or self.default_bin_width_ms)

    @property
    def tensor_spec(self) -> Any:
        """How NLB tensors are cut from the NWB files (:class:`~nlbsuite.nlb.specs.DatasetSpec`),
        or None for data not built from NWB files."""
        from nlbsuite.nlb.specs import DATASETS

        return DATASETS.get(self.name)


def generic_card(name: str) -> DatasetCard:
    """The card of data the catalogue does not know (e.g. a tensor file of any name): every
    metric its target supports, velocity decoding for behaviour, any sizes."""
    return DatasetCard(name, name, "tensors from a file", loader="")


_NLB = "nlbsuite.datasets:load_nlb_card"
_LORENZ = "nlbsuite.datasets:load_lorenz_card"
_VEL = ("co-bps", "vel R2", "psth R2", "fp-bps")


def _maze(name: str, title: str, dandiset: str, version: str, description: str, **kw: Any):
    return DatasetCard(
        name, title, description, _NLB, dandiset, version, official=True, layout="mc_maze",
        subject="Jenkins", metrics=_VEL, **kw,
    )  # fmt: skip


BUILTIN_CARDS: tuple[DatasetCard, ...] = (
    # nlb_tools' order: the order of ``evaluate``'s result.
    _maze("mc_maze", "MC_Maze", "000128", "0.220113.0400",
          "monkey motor cortex, delayed center-out maze reaching",
          shape=NLBShape(137, 45, 140), test_sizes=(2295, 574)),
    DatasetCard("mc_rtt", "MC_RTT", "monkey motor cortex, random target reaching", _NLB,
                "000129", "0.241017.1444", official=True, layout="mc_rtt", subject="Indy",
                metrics=("co-bps", "vel R2", "fp-bps"), shape=NLBShape(98, 32, 120),
                test_sizes=(1080, 271)),
    DatasetCard("area2_bump", "Area2_Bump", "monkey area 2, reaching with bump perturbations",
                _NLB, "000127", "0.220113.0359", official=True, layout="area2_bump",
                subject="Han", metrics=_VEL, decode_masks=2, shape=NLBShape(49, 16, 120),
                test_sizes=(364, 98)),
    DatasetCard("dmfc_rsg", "DMFC_RSG", "monkey DMFC, ready-set-go timing task", _NLB,
                "000130", "0.220113.0407", official=True, layout="dmfc_rsg", subject="Haydn",
                metrics=("co-bps", "tp corr", "psth R2", "fp-bps"), scores_train_rates=False,
                shape=NLBShape(45, 15, 300), test_sizes=(1289, 430)),
    _maze("mc_maze_large", "MC_Maze_Large", "000138", "0.220113.0407",
          "MC_Maze scaled, 500 train trials", scaling_prefix="[500]",
          shape=NLBShape(122, 40, 140), test_sizes=(500, 100)),
    _maze("mc_maze_medium", "MC_Maze_Medium", "000139", "0.220113.0408",
          "MC_Maze scaled, 250 train trials", scaling_prefix="[250]",
          shape=NLBShape(114, 38, 140), test_sizes=(250, 100)),
    _maze("mc_maze_small", "MC_Maze_Small", "000140", "0.220113.0408",
          "MC_Maze scaled, 100 train trials", scaling_prefix="[100]",
          shape=NLBShape(107, 35, 140), test_sizes=(100, 100)),
    DatasetCard("lorenz", "Lorenz", "Lorenz latents -> Poisson spikes, 65 cond x 20 trials, "
                "1 s at 20 ms, 22+8 neurons, true rates known", _LORENZ,
                default_bin_width_ms=20, metrics=("co-bps", "psth R2", "fp-bps")),
    DatasetCard("lorenz_tiny", "Lorenz (tiny)", "tiny Lorenz for tests: 8 cond x 6 trials, "
                "0.4 s at 20 ms", _LORENZ, default_bin_width_ms=20,
                metrics=("co-bps", "psth R2", "fp-bps")),
)  # fmt: skip


@cache
def cards() -> dict[str, DatasetCard]:
    """Every known dataset's card by name: built-in ones, then the ``nlbsuite.datasets``
    entry points (which cannot shadow a built-in name)."""
    out = {c.name: c for c in BUILTIN_CARDS}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in out:
            continue
        try:
            card = ep.load()
        except Exception as exc:  # a broken third-party package must not break the suite
            raise UserError(
                f"cannot load the dataset card {ep.value} ({exc})", "dataset", ep.name
            ) from None
        if not isinstance(card, DatasetCard) or card.name != ep.name:
            raise UserError(
                f"{ep.value} is not a DatasetCard named '{ep.name}'", "dataset", ep.name
            )
        out[card.name] = card
    return out


def get_card(name: str) -> DatasetCard:
    """The card of dataset ``name``; :class:`UserError` with a suggestion if unknown."""
    known = cards()
    if name not in known:
        from nlbsuite.registry import did_you_mean

        raise UserError(f"unknown dataset; {did_you_mean(name, list(known))}", "dataset", name)
    return known[name]


def find_card(name: str) -> DatasetCard:
    """The card of ``name``, or :func:`generic_card` for data the catalogue does not know."""
    return cards().get(name) or generic_card(name)


def official_cards() -> list[DatasetCard]:
    """NLB'21's seven datasets, in nlb_tools' order."""
    return [c for c in cards().values() if c.official]


def guess_dataset(name: str) -> str | None:
    """The known dataset a file or key name starts with (``mc_maze_small_val_tensors`` ->
    ``mc_maze_small``; the longest name wins), or None."""
    stem = name.lower()
    for ds in sorted(cards(), key=len, reverse=True):
        if stem.startswith(ds):
            return ds
    return None


# ----------------------------------------------------------------------------------------
# Dataset keys
# ----------------------------------------------------------------------------------------


class DatasetKey(NamedTuple):
    """A dataset at a bin width, as submission and target files name it: ``mc_maze`` (5 ms),
    ``mc_maze_20``. ``str(key)`` prints it; :meth:`parse` reads it; it unpacks as
    ``dataset, bin_width_ms = key``."""

    dataset: str
    bin_width_ms: int = 5

    def __str__(self) -> str:
        return self.dataset if self.bin_width_ms == 5 else f"{self.dataset}_{self.bin_width_ms}"

    @classmethod
    def parse(cls, key: str) -> DatasetKey:
        """``mc_maze_20`` -> (``mc_maze``, 20); ``mc_maze_small`` -> (``mc_maze_small``, 5).

        Raises :class:`UserError` for keys of no known dataset.
        """
        return _parse_key(key)

    @property
    def card(self) -> DatasetCard:
        return find_card(self.dataset)


@cache
def _parse_key(key: str) -> DatasetKey:
    names = list(cards())
    for name in sorted(names, key=len, reverse=True):
        if key == name:
            return DatasetKey(name, 5)
        m = re.fullmatch(re.escape(name) + r"_(\d+)", key)
        if m:
            return DatasetKey(name, int(m.group(1)))
    valid = [k for d in names for k in (d, f"{d}_20")]
    raise UserError(f"unknown dataset key '{key}': expected one of {', '.join(valid)}")


def ordered_keys(keys: list[str]) -> list[str]:
    """nlb_tools' order (official dataset, then 5 ms before 20 ms), then other keys sorted."""
    order = [str(c.key(b)) for c in official_cards() for b in BIN_WIDTHS_MS]
    return [k for k in order if k in keys] + sorted(k for k in keys if k not in order)
