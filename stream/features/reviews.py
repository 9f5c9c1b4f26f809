"""Pure review weighting and the incremental weighted-mean aggregate of review vectors."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.errors import EmbeddingDimMismatch
from stream.features.vectors import FloatArray, l2_normalize

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # recency reference: a review posted then has recency factor 1
HALF_LIFE_DAYS = 180.0  # a review counts twice as much as one posted 180 days earlier
TAU_DAYS = HALF_LIFE_DAYS / math.log(2)
VERIFIED_BONUS = 1.25  # helpfulness factor of a verified purchase
# Bound of the recency exponent, about 430 years either side of EPOCH: exp(600) ~ 4e260, so even
# 10^40 reviews at the bound sum to a finite float64 and exp(-600) is still a positive normal number.
MAX_RECENCY_EXPONENT = 600.0
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class ReviewContribution:
    """What one review adds to its listing's aggregate: ``weight * vector``."""

    review_id: str
    event_id: str
    weight: float
    vector: FloatArray  # the review's (L2-normalised) text_multilingual vector, float32


@dataclass(frozen=True)
class ReviewAggregate:
    """Running sums over a listing's reviews; the mean never needs the reviews themselves."""

    weighted_sum: NDArray[np.float64]  # sum of weight * vector, float64
    weight_sum: float
    count: int

    @classmethod
    def empty(cls, dims: int) -> "ReviewAggregate":
        """The aggregate of no reviews."""
        return cls(np.zeros(dims, dtype=np.float64), 0.0, 0)


def review_weight(helpful_votes: int | None, verified_purchase: bool | None, occurred_at: datetime) -> float:
    """Weight of one review: helpfulness times recency.

    Helpfulness is ``1 + log1p(helpful_votes)``, times 1.25 for a verified purchase. Recency is
    ``exp((t - EPOCH) / TAU)`` with ``t`` in days and a half-life of 180 days. Every weight grows
    by the same factor as time passes, so the weighted mean of a fixed set of reviews never
    changes and can be kept incrementally. The exponent is clamped to ±``MAX_RECENCY_EXPONENT``
    (recency saturates before about 1590 and after about 2450), so sums of weights stay finite.

    Args:
        helpful_votes: helpful votes the review got; None or negative counts as 0.
        verified_purchase: whether the reviewer bought the toy; None counts as False.
        occurred_at: aware time the review was posted.

    Returns:
        A positive, finite weight for any aware ``occurred_at``.

    Raises:
        ValueError: if ``occurred_at`` is naive (no time zone).
    """
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise ValueError(f"occurred_at {occurred_at.isoformat()} has no time zone; pass an aware datetime")
    helpfulness = 1.0 + math.log1p(max(helpful_votes or 0, 0))
    if verified_purchase:
        helpfulness *= VERIFIED_BONUS
    days = (occurred_at - EPOCH).total_seconds() / SECONDS_PER_DAY
    exponent = min(max(days / TAU_DAYS, -MAX_RECENCY_EXPONENT), MAX_RECENCY_EXPONENT)
    return helpfulness * math.exp(exponent)


def review_text(title: str | None, text: str | None) -> str:
    """The passage embedded for a review: its title, then its body on a new line ('' when both are blank).

    >>> print(review_text("Great gift!", " My son loves it. "))
    Great gift!
    My son loves it.
    """
    return "\n".join(part.strip() for part in (title, text) if part and part.strip())


def weighted_mean(vectors: NDArray[np.floating[Any]], weights: NDArray[np.floating[Any]]) -> FloatArray:
    """L2-normalised weighted mean of review vectors (batch form, e.g. for training).

    Args:
        vectors: review vectors, shape (n, d).
        weights: one non-negative weight per vector, shape (n,).

    Returns:
        float32 vector of shape (d,), unit length; all zeros when there are no reviews or no weight.

    Raises:
        EmbeddingDimMismatch: if ``vectors`` is not 2-d or ``weights`` does not have one entry per row.
    """
    matrix = np.asarray(vectors, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if matrix.ndim != 2 or w.shape != (matrix.shape[0],):
        raise EmbeddingDimMismatch(
            f"weighted_mean needs vectors [n, d] and weights [n], got {matrix.shape} and {w.shape}; "
            "pass one weight per review vector"
        )
    return l2_normalize(w @ matrix)


def add_contribution(aggregate: ReviewAggregate, contribution: ReviewContribution) -> ReviewAggregate:
    """The aggregate with one more review.

    Raises:
        EmbeddingDimMismatch: if the contribution's vector does not have the aggregate's dimension.
    """
    delta = _weighted(aggregate, contribution)
    return ReviewAggregate(
        aggregate.weighted_sum + delta, aggregate.weight_sum + contribution.weight, aggregate.count + 1
    )


def remove_contribution(aggregate: ReviewAggregate, contribution: ReviewContribution) -> ReviewAggregate:
    """The aggregate without a review that was added before; removing the last one gives exact zeros.

    Raises:
        EmbeddingDimMismatch: if the contribution's vector does not have the aggregate's dimension.
    """
    delta = _weighted(aggregate, contribution)
    if aggregate.count <= 1:
        return ReviewAggregate.empty(aggregate.weighted_sum.shape[0])
    return ReviewAggregate(
        aggregate.weighted_sum - delta, aggregate.weight_sum - contribution.weight, aggregate.count - 1
    )


def aggregate_vector(aggregate: ReviewAggregate) -> FloatArray | None:
    """The listing's review vector: the L2-normalised weighted mean, or None without reviews."""
    if aggregate.count == 0 or aggregate.weight_sum <= 0.0:
        return None
    return l2_normalize(aggregate.weighted_sum / aggregate.weight_sum)


def _weighted(aggregate: ReviewAggregate, contribution: ReviewContribution) -> NDArray[np.float64]:
    vector = np.asarray(contribution.vector, dtype=np.float32)
    if vector.shape != aggregate.weighted_sum.shape:
        raise EmbeddingDimMismatch(
            f"review {contribution.review_id} has a vector of shape {vector.shape}, the aggregate holds "
            f"{aggregate.weighted_sum.shape}; embed reviews with the text_multilingual encoder"
        )
    # float32 vector widened to float64 before scaling, so adding and removing use the same product.
    return contribution.weight * vector.astype(np.float64)
