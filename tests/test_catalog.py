"""The dataset catalogue: cards agree with the tensor specs and nlb_tools, keys parse and
print, third-party datasets register through the entry point."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from nlbsuite import catalog
from nlbsuite.catalog import (
    METRICS,
    DatasetCard,
    DatasetKey,
    cards,
    get_card,
    guess_dataset,
    official_cards,
    ordered_keys,
)
from nlbsuite.errors import UserError
from nlbsuite.nlb.specs import DATASETS


def test_official_cards_are_nlb_tools_datasets_in_its_order() -> None:
    assert [c.name for c in official_cards()] == [
        "mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium",
        "mc_maze_small",
    ]  # fmt: skip
    assert [c.scaling_prefix for c in official_cards() if c.scaling_prefix] == [
        "[500]", "[250]", "[100]",
    ]  # fmt: skip


@pytest.mark.parametrize("card", official_cards(), ids=lambda c: c.name)
def test_card_facts_agree_with_the_tensor_spec(card: DatasetCard) -> None:
    spec = card.tensor_spec
    assert spec is DATASETS[card.name]
    assert (spec.name, spec.dandiset, spec.version, spec.title) == (
        card.name, card.dandiset, card.version, card.title,
    )  # fmt: skip
    assert ("psth R2" in card.metrics) == (spec.psth is not None)
    assert (card.decode_masks == 2) == (spec.decode_mask_field is not None)
    per_trial = spec.behavior_source == "trial_info"
    assert card.behavior_metric == ("tp corr" if per_trial else "vel R2")
    assert card.scores_train_rates == (not per_trial)
    assert card.source.startswith(f"DANDI {card.dandiset}")


def test_every_card_metric_has_metadata() -> None:
    for card in cards().values():
        assert card.main_metric in METRICS
        assert all(METRICS[m].official for m in card.metrics), card.name
    assert not METRICS["tp corr"].higher_is_better and METRICS["co-bps"].higher_is_better


def test_dataset_key_parses_and_prints_every_card_at_every_bin_width() -> None:
    for card in cards().values():
        for bin_ms in card.bin_widths_ms:
            key = card.key(bin_ms)
            assert DatasetKey.parse(str(key)) == key
            dataset, width = key  # unpacks like a (name, bin width) pair
            assert (dataset, width) == (card.name, bin_ms)
    assert str(DatasetKey("mc_maze_small", 20)) == "mc_maze_small_20"
    assert DatasetKey.parse("mc_maze_small") == ("mc_maze_small", 5)  # longest name wins
    assert DatasetKey.parse("lorenz_20").card is get_card("lorenz")
    with pytest.raises(UserError, match=r"unknown dataset key 'mc_mazes'.*mc_maze_20"):
        DatasetKey.parse("mc_mazes")


def test_ordered_keys_and_guess_dataset() -> None:
    keys = ["lorenz", "mc_maze_small", "mc_maze_20", "dmfc_rsg", "mc_maze"]
    assert ordered_keys(keys) == ["mc_maze", "mc_maze_20", "dmfc_rsg", "mc_maze_small", "lorenz"]
    assert guess_dataset("mc_maze_small_val_tensors") == "mc_maze_small"
    assert guess_dataset("my_data") is None


def test_unknown_dataset_names_the_closest_card() -> None:
    with pytest.raises(UserError, match=r"dataset='mc_mazee'.*did you mean 'mc_maze'"):
        get_card("mc_mazee")


@pytest.fixture
def toy_entry_point(monkeypatch):
    eps = [EntryPoint("toy_data", "toy_dataset:CARD", catalog.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(catalog, "entry_points", lambda group: eps if group == catalog.ENTRY_POINT_GROUP else [])
    catalog.cards.cache_clear()
    catalog._parse_key.cache_clear()
    yield
    catalog.cards.cache_clear()
    catalog._parse_key.cache_clear()


def test_third_party_dataset_registers_through_the_entry_point(toy_entry_point) -> None:
    from toy_dataset import CARD

    from nlbsuite.datasets import list_datasets, load_dataset

    assert get_card("toy_data") == CARD
    assert "toy_data" in [c.name for c in list_datasets()]
    assert DatasetKey.parse("toy_data_20") == ("toy_data", 20)
    data = load_dataset("toy_data", phase="val")
    assert data.key == "toy_data_20" and data.bin_width_ms == 20
