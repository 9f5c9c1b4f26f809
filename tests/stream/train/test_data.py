"""Product-level splits, pair batches, modality dropout and noise, and the views of one listing."""

import numpy as np
import pytest
import torch

from stream.errors import CatalogError
from stream.train.data import (
    PairBatchSampler,
    donor_pools,
    draw_donors,
    drop_modalities,
    family_labels,
    jitter,
    pool_photo_subset,
    positive_groups,
    shared_text_views,
    split_families,
    split_modalities,
    split_rows,
    swap_modalities,
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


def test_groups_follow_the_label_mode() -> None:
    families, keys = ["a", "a", "b", "b"], ["gtin:1", "", "gtin:1", ""]

    assert positive_groups(families, keys, "product") == families
    assert positive_groups(families, keys, "weak") == ["gtin:1", "listing:1", "gtin:1", "listing:3"]
    assert positive_groups(families, keys, "none") == [f"listing:{row}" for row in range(4)]
    assert positive_groups(["w", "x", "y", "z"], keys, "weak") == positive_groups(families, keys, "weak")


def test_with_singletons_a_listing_without_a_partner_pairs_with_itself() -> None:
    groups = ["k", "listing:1", "k", "listing:3"]
    rows = np.arange(4, dtype=np.int64)
    sampler = PairBatchSampler(groups, ["c"] * 4, rows, batch_products=8, seed=0, singletons=True)

    ((first, second),) = sampler.epoch(0)

    pairs = {(int(a), int(b)) for a, b in zip(first, second, strict=True)}
    assert {(1, 1), (3, 3)} <= pairs and ({(0, 2), (2, 0)} & pairs) and len(pairs) == 3


def _pool_fixture() -> tuple[torch.Tensor, list[torch.Tensor]]:
    mask = torch.ones(6, 4)
    mask[[1, 4], 3] = 0.0  # rows 1 and 4 have no reviews
    return mask, donor_pools(mask, np.arange(6, dtype=np.int64))


def test_donors_are_other_listings_that_have_the_modality() -> None:
    mask, pools = _pool_fixture()
    rows = np.tile(np.arange(6, dtype=np.int64), 500)

    donors = draw_donors(rows, mask[rows], pools, torch.full((4,), 0.5), torch.Generator().manual_seed(0))

    swapped = donors >= 0
    assert not torch.any(donors[swapped] == torch.from_numpy(rows).unsqueeze(1).expand_as(donors)[swapped])
    assert not torch.isin(donors[:, 3], torch.tensor([1, 4])).any()
    assert not swapped[torch.from_numpy(np.isin(rows, [1, 4])), 3].any()  # absent reviews stay absent


def test_donors_are_drawn_at_the_rate_and_uniformly() -> None:
    mask, pools = _pool_fixture()
    rows = np.zeros(6000, dtype=np.int64)

    donors = draw_donors(
        rows,
        mask[rows],
        pools,
        torch.tensor([0.2, 0.0, 1.0, 0.5]),
        generator=torch.Generator().manual_seed(1),
    )

    assert torch.allclose((donors >= 0).float().mean(dim=0), torch.tensor([0.2, 0.0, 1.0, 0.5]), atol=0.02)
    counts = torch.bincount(donors[:, 2], minlength=6).float() / len(rows)
    assert counts[0] == 0 and torch.allclose(counts[1:], torch.full((5,), 0.2), atol=0.02)


def test_donor_draws_are_deterministic_and_a_lone_listing_keeps_its_vector() -> None:
    mask, pools = _pool_fixture()
    rows = np.arange(6, dtype=np.int64)
    rates = torch.full((4,), 0.7)

    first, second = (
        draw_donors(rows, mask, pools, rates, torch.Generator().manual_seed(5)) for _ in range(2)
    )
    lone = draw_donors(rows[:1], mask[:1], donor_pools(mask, rows[:1]), torch.ones(4), torch.Generator())

    assert torch.equal(first, second)
    assert torch.equal(lone, torch.full((1, 4), -1))


def test_swapping_replaces_the_vectors_and_keeps_the_mask(feature_set_factory: FeatureSetFactory) -> None:
    listings = feature_set_factory(families=3, per_family=2).listing_batch()
    batch = take(listings, np.array([0, 1], dtype=np.int64))
    donors = torch.tensor([[5, -1, 3, -1], [-1, 4, -1, 2]])

    swapped = swap_modalities(batch, donors, listings)

    assert torch.equal(swapped.modality_mask, batch.modality_mask)
    assert torch.equal(swapped.text[0], listings.text[5]) and torch.equal(
        swapped.text_multilingual[0], listings.text_multilingual[5]
    )
    assert torch.equal(swapped.frames[0], listings.frames[3]) and torch.equal(
        swapped.frame_mask[0], listings.frame_mask[3]
    )
    assert torch.equal(swapped.image[1], listings.image[4]) and torch.equal(
        swapped.reviews[1], listings.reviews[2]
    )
    assert torch.equal(swapped.text[1], batch.text[1]) and torch.equal(swapped.image[0], batch.image[0])


def test_split_views_are_disjoint_and_non_empty_where_a_row_has_two_modalities() -> None:
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]).repeat(300, 1)

    first, second = split_modalities(mask, torch.Generator().manual_seed(0))

    several = mask.sum(dim=1) >= 2
    assert torch.all(first + second <= mask + (~several).float().unsqueeze(1))
    assert torch.equal((first + second)[several], mask[several])
    assert torch.all(first.sum(dim=1) >= 1) and torch.all(second.sum(dim=1) >= 1)
    assert torch.equal(first[~several], mask[~several]) and torch.equal(second[~several], mask[~several])
    assert len({tuple(row.tolist()) for row in first[:300:3]}) > 5  # the subsets vary


def test_a_photo_subset_pools_only_kept_photos() -> None:
    photos = torch.eye(4).repeat(200, 1, 1)
    photo_mask = torch.tensor([1.0, 1.0, 1.0, 0.0]).repeat(200, 1)
    photo_mask[0] = 0.0
    image = torch.full((200, 4), 7.0)

    pooled = pool_photo_subset(
        photos, photo_mask, image, keep=0.5, generator=torch.Generator().manual_seed(0)
    )

    assert torch.equal(pooled[0], image[0])
    kept = pooled[1:] > 0
    assert torch.all(kept.sum(dim=1) >= 1) and not kept[:, 3].any()
    assert torch.allclose(pooled[1:].norm(dim=1), torch.ones(199))
    assert 1.5 < float(kept.sum(dim=1).float().mean()) < 2.1  # one rescued, else half of three


def test_jitter_scales_noise_to_the_vector_and_keeps_zeros() -> None:
    vectors = torch.cat([torch.full((1, 1000), 10.0), torch.zeros(1, 1000)])

    shaken = jitter(vectors, noise=0.1, dim_dropout=0.2, generator=torch.Generator().manual_seed(0))

    assert not shaken[1].any()
    dropped = shaken[0] == 0
    assert abs(float(dropped.float().mean()) - 0.2) < 0.04
    assert abs(float(shaken[0][~dropped].std()) - 10.0 * 0.1 / 0.8) < 0.2


def test_shared_text_views_keep_the_text_in_both_and_only_present_modalities() -> None:
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0]] * 200 + [[1.0, 0.0, 0.0, 0.0]])

    first, second = shared_text_views(mask, torch.Generator().manual_seed(0))

    assert torch.all(first[:, 0] == 1) and torch.all(second[:, 0] == 1)
    assert torch.all(first[-1, 1:] == 0) and torch.all(second[-1, 1:] == 0)
    assert 0.35 < float(first[:200, 1:].mean()) < 0.65
    assert not torch.equal(first, second)
