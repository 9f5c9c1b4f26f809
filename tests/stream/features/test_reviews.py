"""Pure review weighting and the incremental aggregate."""

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from stream.errors import EmbeddingDimMismatch
from stream.features.reviews import (
    EPOCH,
    HALF_LIFE_DAYS,
    ReviewAggregate,
    ReviewContribution,
    add_contribution,
    aggregate_vector,
    remove_contribution,
    review_text,
    review_weight,
    weighted_mean,
)
from stream.features.vectors import l2_normalize

DIMS = 8


def contribution(review_id: str, vector: np.ndarray, weight: float) -> ReviewContribution:
    return ReviewContribution(review_id, f"event-{review_id}", weight, l2_normalize(vector))


def test_weight_at_epoch_without_votes_is_one() -> None:
    assert review_weight(None, None, EPOCH) == pytest.approx(1.0)
    assert review_weight(0, False, EPOCH) == pytest.approx(1.0)


def test_weight_doubles_every_half_life() -> None:
    later = EPOCH + timedelta(days=HALF_LIFE_DAYS)

    assert review_weight(2, True, later) == pytest.approx(2 * review_weight(2, True, EPOCH))


def test_later_posting_outweighs_earlier_with_same_helpfulness() -> None:
    early = datetime(2024, 3, 1, tzinfo=UTC)
    late = early + timedelta(days=30)

    assert review_weight(5, True, late) > review_weight(5, True, early)
    assert review_weight(0, None, late) > review_weight(0, None, early)


def test_helpful_votes_and_verified_purchase_raise_weight() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)

    assert review_weight(10, False, at) > review_weight(1, False, at) > review_weight(0, False, at)
    assert review_weight(1, True, at) == pytest.approx(1.25 * review_weight(1, False, at))
    assert review_weight(-3, None, at) == review_weight(0, None, at)


def test_weight_depends_on_the_instant_not_the_time_zone() -> None:
    utc = datetime(2025, 6, 1, 12, tzinfo=UTC)
    shanghai = utc.astimezone(timezone(timedelta(hours=8)))

    assert review_weight(1, True, shanghai) == review_weight(1, True, utc)


def test_weight_rejects_naive_times() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        review_weight(1, True, datetime(2025, 1, 1))


def test_weighted_mean_is_normalised_and_favours_heavy_vectors() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])

    mean = weighted_mean(vectors, np.array([3.0, 1.0]))

    np.testing.assert_allclose(mean, np.array([3.0, 1.0]) / np.sqrt(10), rtol=1e-6)
    assert mean.dtype == np.float32


def test_weighted_mean_of_nothing_is_zero() -> None:
    np.testing.assert_array_equal(weighted_mean(np.zeros((0, DIMS)), np.zeros(0)), np.zeros(DIMS))


def test_weighted_mean_checks_shapes() -> None:
    with pytest.raises(EmbeddingDimMismatch, match="one weight per review vector"):
        weighted_mean(np.ones((3, DIMS)), np.ones(2))


def test_incremental_aggregate_after_posts_and_deletes_equals_batch_mean() -> None:
    rng = np.random.default_rng(7)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    reviews = [
        contribution(
            f"r{i}",
            rng.normal(size=DIMS),
            review_weight(
                int(rng.integers(0, 50)), bool(i % 2), start + timedelta(days=int(rng.integers(0, 900)))
            ),
        )
        for i in range(20)
    ]
    aggregate = ReviewAggregate.empty(DIMS)
    for review in reviews:
        aggregate = add_contribution(aggregate, review)
    deleted = {"r3", "r4", "r11", "r19"}
    for review in reviews:
        if review.review_id in deleted:
            aggregate = remove_contribution(aggregate, review)

    survivors = [review for review in reviews if review.review_id not in deleted]
    expected = weighted_mean(np.stack([r.vector for r in survivors]), np.array([r.weight for r in survivors]))
    assert aggregate.count == len(survivors)
    np.testing.assert_allclose(aggregate_vector(aggregate), expected, atol=1e-6)


def test_removing_the_last_review_leaves_no_vector_and_exact_zeros() -> None:
    review = contribution("r1", np.ones(DIMS), review_weight(3, True, datetime(2025, 1, 1, tzinfo=UTC)))

    aggregate = remove_contribution(add_contribution(ReviewAggregate.empty(DIMS), review), review)

    assert aggregate_vector(aggregate) is None
    assert aggregate.weight_sum == 0.0 and not aggregate.weighted_sum.any()


def test_recent_review_dominates_the_aggregate() -> None:
    old, new = np.eye(DIMS)[0], np.eye(DIMS)[1]
    aggregate = ReviewAggregate.empty(DIMS)
    aggregate = add_contribution(aggregate, contribution("old", old, review_weight(4, True, EPOCH)))
    later = EPOCH + timedelta(days=2 * HALF_LIFE_DAYS)
    aggregate = add_contribution(aggregate, contribution("new", new, review_weight(4, True, later)))

    vector = aggregate_vector(aggregate)

    assert vector is not None and vector[1] > vector[0] > 0


def test_contribution_of_wrong_dimension_is_rejected() -> None:
    review = contribution("r1", np.ones(DIMS + 1), 1.0)

    with pytest.raises(EmbeddingDimMismatch, match="review r1"):
        add_contribution(ReviewAggregate.empty(DIMS), review)


def test_review_text_joins_title_and_body_and_skips_blanks() -> None:
    assert review_text(" Great gift ", "Loves it.") == "Great gift\nLoves it."
    assert review_text(None, "Loves it.") == "Loves it."
    assert review_text("  ", "") == ""


@pytest.mark.parametrize(
    "at",
    [datetime(1, 1, 2, tzinfo=UTC), datetime(2523, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)],
)
def test_weight_is_positive_and_finite_at_any_time(at: datetime) -> None:
    weight = review_weight(10**9, True, at)

    assert 0 < weight < 1e290
    assert np.isfinite(np.float64(weight) * 10**12), "a trillion such reviews still sum to a finite weight"


def test_far_future_reviews_sum_to_a_finite_aggregate() -> None:
    aggregate = ReviewAggregate.empty(DIMS)
    for i in range(4):
        weight = review_weight(40, True, datetime(2523, 1, 1, tzinfo=UTC) + timedelta(days=i))
        aggregate = add_contribution(aggregate, contribution(f"r{i}", np.eye(DIMS)[i], weight))

    vector = aggregate_vector(aggregate)

    assert np.isfinite(aggregate.weight_sum) and np.isfinite(aggregate.weighted_sum).all()
    assert vector is not None and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)


def test_recency_saturates_instead_of_overflowing() -> None:
    far, farther = datetime(3000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)

    assert review_weight(1, True, far) == review_weight(1, True, farther)
    assert review_weight(1, True, datetime(2030, 1, 1, tzinfo=UTC)) < review_weight(1, True, far)
