"""Product-level splits, pair batches and modality dropout."""

import numpy as np
import pytest
import torch

from stream.errors import CatalogError
from stream.train.data import (
    PairBatchSampler,
    drop_modalities,
    family_labels,
    split_families,
    split_rows,
    take,
)
from tests.stream.train.conftest import FeatureSetFactory

FAMILIES = [f"fam-{i:03d}" for i in range(40) for _ in range(i % 4 + 1)]  # 1-4 listings per product


def test_no_product_is_in_two_splits_and_every_listing_is_in_one() -> None:
    rows = split_rows(FAMILIES, seed=3)
    seen = {split: {FAMILIES[row] for row in chosen} for split, chosen in rows.items()}

    assert (
        not seen["train"] & seen["val"]
        and not seen["train"] & seen["test"]
        and not seen["val"] & seen["test"]
    )
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(len(FAMILIES)))


def test_split_sizes_are_70_15_15_of_the_products() -> None:
    split_of = split_families(FAMILIES, seed=0)

    assert [list(split_of.values()).count(split) for split in ("train", "val", "test")] == [28, 6, 6]


def test_split_depends_on_the_seed_and_not_on_listing_order() -> None:
    assert split_families(FAMILIES, seed=1) == split_families(list(reversed(FAMILIES)), seed=1)
    assert split_families(FAMILIES, seed=1) != split_families(FAMILIES, seed=2)


def test_split_needs_three_products() -> None:
    with pytest.raises(CatalogError, match="2 products cannot fill train/val/test splits"):
        split_families(["a", "b", "a"], seed=0)


def test_family_labels() -> None:
    assert family_labels(["b", "a", "b"]).tolist() == [0, 1, 0]


def test_every_batch_holds_two_different_listings_of_each_of_its_products() -> None:
    rows = np.arange(len(FAMILIES), dtype=np.int64)
    sampler = PairBatchSampler(FAMILIES, ["c"] * len(FAMILIES), rows, batch_products=8, seed=0)
    batches = list(sampler.epoch(0))

    assert len(batches) == len(sampler) == 4  # 30 products with >= 2 listings
    for first, second in batches:
        assert [FAMILIES[r] for r in first] == [FAMILIES[r] for r in second]
        assert np.all(first != second)
        assert len({FAMILIES[r] for r in first}) == len(first)
    products = [FAMILIES[r] for first, _ in batches for r in first]
    assert sorted(products) == sorted({f for f in FAMILIES if FAMILIES.count(f) >= 2})


def test_batches_are_reproducible_per_epoch_and_differ_between_epochs() -> None:
    rows = np.arange(len(FAMILIES), dtype=np.int64)
    sampler = PairBatchSampler(FAMILIES, ["c"] * len(FAMILIES), rows, batch_products=8, seed=0)

    def flat(epoch: int) -> list[int]:
        return [int(r) for first, second in sampler.epoch(epoch) for r in (*first, *second)]

    assert flat(0) == flat(0)
    assert flat(0) != flat(1)


def test_category_batches_group_products_of_one_category() -> None:
    families = [f"fam-{i:02d}" for i in range(12) for _ in range(2)]
    categories = [f"cat-{i % 3}" for i in range(12) for _ in range(2)]
    rows = np.arange(len(families), dtype=np.int64)
    sampler = PairBatchSampler(families, categories, rows, batch_products=4, seed=0, group_by_category=True)

    for first, _ in sampler.epoch(0):
        assert len({categories[r] for r in first}) == 1


def test_sampler_only_uses_the_given_rows() -> None:
    rows = np.array([0, 1, 2, 3, 4, 5], dtype=np.int64)
    sampler = PairBatchSampler(FAMILIES, ["c"] * len(FAMILIES), rows, batch_products=8, seed=0)

    used = {int(r) for first, second in sampler.epoch(0) for r in (*first, *second)}
    assert used <= set(rows.tolist())


def test_modality_dropout_never_hides_everything_and_never_adds() -> None:
    mask = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).repeat(200, 1)

    dropped = drop_modalities(mask, rate=0.9, generator=torch.Generator().manual_seed(0))

    assert torch.all(dropped <= mask)
    assert torch.all(dropped.sum(dim=1) >= 1)
    assert float(dropped.sum()) < 0.5 * float(mask.sum())


def test_modality_dropout_rate_zero_keeps_the_mask() -> None:
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0]])

    assert torch.equal(drop_modalities(mask, rate=0.0, generator=torch.Generator().manual_seed(0)), mask)


def test_modality_dropout_hides_each_modality_at_about_the_rate() -> None:
    mask = torch.ones(4000, 4)

    dropped = drop_modalities(mask, rate=0.3, generator=torch.Generator().manual_seed(0))

    assert torch.allclose(1.0 - dropped.mean(dim=0), torch.full((4,), 0.3), atol=0.03)


def test_take_selects_rows_of_every_tensor(feature_set_factory: FeatureSetFactory) -> None:
    features = feature_set_factory(families=3, per_family=2)
    batch = take(features.listing_batch(), np.array([4, 1], dtype=np.int64))

    assert torch.equal(batch.text, torch.from_numpy(features.text[[4, 1]]))
    assert torch.equal(batch.frames, torch.from_numpy(features.frames[[4, 1]]))
