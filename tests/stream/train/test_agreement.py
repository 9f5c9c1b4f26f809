"""Tests for stream/train/agreement.py: pseudo-products from listings whose photos and texts agree."""

import numpy as np

from stream.train.agreement import agreement_groups, components, mutual_top_k
from stream.train.cache import FeatureSet
from tests.stream.train.conftest import FeatureSetFactory


def test_mutual_neighbours_need_both_sides_and_a_present_vector() -> None:
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.95, 0.05]], np.float32)

    pairs = mutual_top_k(vectors, np.array([True, True, True, False]), k=1)

    assert pairs[0, 1] and pairs[1, 0]
    assert not pairs[2].any() and not pairs[3].any() and not pairs.diagonal().any()


def test_components_join_chains() -> None:
    pairs = np.zeros((5, 5), bool)
    for a, b in ((0, 3), (3, 4)):
        pairs[a, b] = pairs[b, a] = True

    assert components(pairs) == [0, 1, 2, 0, 0]


def test_agreement_pairs_the_listings_of_a_product_without_reading_its_label(
    feature_set_factory: FeatureSetFactory,
) -> None:
    features = feature_set_factory(families=20, per_family=2)
    features.modality_mask[:, 1] = 1.0
    hidden = FeatureSet(**{**vars(features), "families": np.array([f"x{i}" for i in range(len(features))])})
    rows = list(range(len(features)))

    groups = agreement_groups(hidden, rows, k=1)

    paired = [row for row in rows if groups[row].startswith("agree:")]
    assert len(paired) >= len(rows) // 2
    for row in paired:
        partners = [other for other in paired if groups[other] == groups[row] and other != row]
        assert all(features.families[other] == features.families[row] for other in partners)


def test_listings_outside_the_rows_and_unpaired_ones_stay_alone(
    feature_set_factory: FeatureSetFactory,
) -> None:
    features = feature_set_factory(families=6, per_family=2)
    features.modality_mask[:, 1] = 0.0  # no photos: nothing can agree

    groups = agreement_groups(features, [0, 1, 2, 3])

    assert groups == [f"listing:{row}" for row in range(len(features))]


def test_a_second_round_pairs_by_fused_vectors_that_a_photo_or_text_confirms(
    feature_set_factory: FeatureSetFactory,
) -> None:
    features = feature_set_factory(families=10, per_family=2)
    features.modality_mask[:, 1] = 1.0
    rows = list(range(len(features)))
    scrambled = np.random.default_rng(0).standard_normal((len(features), 10)).astype(np.float32)
    truthful = np.eye(10, dtype=np.float32)[[int(f.split("-")[1]) for f in features.families]]

    by_truth = agreement_groups(features, rows, k=1, fused=truthful + 0.01 * scrambled)
    by_noise = agreement_groups(features, rows, k=1, fused=scrambled)

    paired = [row for row in rows if by_truth[row].startswith("agree:")]
    assert len(paired) > sum(group.startswith("agree:") for group in by_noise)
    assert all(
        features.families[a] == features.families[b]
        for a in paired
        for b in paired
        if by_truth[a] == by_truth[b]
    )
