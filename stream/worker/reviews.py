"""The review pipeline: decode, embed, fold into each listing's review aggregate, then re-fuse."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from stream import metrics
from stream.contracts.events import EventDecoder, ReviewEvent
from stream.features.reviews import ReviewContribution, review_text, review_weight
from stream.features.vectors import FloatArray, l2_normalize
from stream.store.reviews import ReviewChange, ReviewDeleted, ReviewOutcome, ReviewPosted, ReviewStore
from stream.worker.batch import BatchPipeline
from stream.worker.delivery import Delivery, RawMessage

# events_processed_total outcome per store status; listing_mismatch is dead-lettered instead.
OUTCOMES = {
    "added": "applied",
    "replaced": "applied",
    "removed": "applied",
    "duplicate": "already_applied",
    "superseded": "stale",  # a repost older than the stored one (batches in flight together can reorder)
    "unknown": "stale",
    "deleted": "stale",  # a post not newer than its review's deletion (e.g. replayed): it stays deleted
    "listing_deleted": "stale",  # a post not newer than its listing's deletion
}
Refuse = Callable[[list[str]], Awaitable[None]]


class TextEncoder(Protocol):
    """Embeds texts (see :class:`stream.inference.triton.TritonEncoder`)."""

    async def embed_texts(self, texts: Sequence[str]) -> Any: ...


@dataclass(frozen=True)
class DecodedReview:
    """A valid review event, with the weight of a posted one."""

    event: ReviewEvent
    weight: float | None  # None for deletes and for posts without text (they remove the review)


def posting_weight(event: ReviewEvent) -> float:
    """The review's weight: positive and finite for any decoded event (recency is bounded, and the
    decoder refuses an occurred_at outside 2000..now + 1 day)."""
    return review_weight(event.helpful_votes, event.verified_purchase, event.occurred_at)


class ReviewPipeline(BatchPipeline[DecodedReview, ReviewOutcome]):
    """Turns a batch of review messages into updated review aggregates and re-fused listings.

    Per batch: decode -> embed posted reviews (one call) -> apply every change in order (one Redis
    round trip) -> re-fuse the touched listings. ``refuse`` gets the listings whose aggregate changed,
    and also those whose events were replays: a worker that stopped between storing and re-fusing has
    to re-fuse on the replay. A post with neither title nor text removes the review, since there is
    nothing to embed.
    """

    def __init__(
        self,
        *,
        decoder: EventDecoder,
        encoder: TextEncoder,
        store: ReviewStore,
        delivery: Delivery,
        refuse: Refuse,
    ) -> None:
        """Wire the pipeline.

        Args:
            decoder: checks and decodes review messages.
            encoder: embeds review texts with the ``reviews`` vector's model.
            store: the review aggregates.
            delivery: dead-letter and embeddings topics.
            refuse: re-fuses the given listings (e.g. :meth:`stream.worker.refusion.Refuser.refuse`).
        """
        super().__init__(delivery)
        self._decoder = decoder
        self._encoder = encoder
        self._store = store
        self._refuse = refuse

    def decode(self, raw: RawMessage) -> DecodedReview:
        """The review event in ``raw`` with the weight of a posted review."""
        event = self._decoder.decode_review(raw.value, raw.key)
        has_text = event.type == "review.posted" and bool(review_text(event.title, event.text))
        return DecodedReview(event, posting_weight(event) if has_text else None)

    async def handle(self, reviews: list[DecodedReview]) -> list[ReviewOutcome]:
        """Embed the posted reviews, apply every change, then re-fuse the listings touched."""
        posted = [i for i, review in enumerate(reviews) if review.weight is not None]
        texts = [review_text(reviews[i].event.title, reviews[i].event.text) for i in posted]
        vectors = dict(zip(posted, await self._embed(texts), strict=True))
        outcomes = await self._store.apply(
            [_change(review, vectors.get(i)) for i, review in enumerate(reviews)]
        )
        touched = [o.listing_id for o in outcomes if o.changed or o.status == "duplicate"]
        if touched:
            await self._refuse(list(dict.fromkeys(touched)))
        return outcomes

    async def finish(self, raw: RawMessage, review: DecodedReview, outcome: ReviewOutcome) -> None:
        """Count the outcome; a review that names another listing than the stored one is dead-lettered."""
        if outcome.status == "listing_mismatch":
            await self.delivery.deadletter(raw, "invalid_field", _mismatch_message(outcome))
        else:
            metrics.events_processed_total.labels(raw.topic, OUTCOMES[outcome.status]).inc()

    async def _embed(self, texts: list[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self._store.dims), dtype=np.float32)
        return l2_normalize(await self._encoder.embed_texts(texts))


def _change(review: DecodedReview, vector: FloatArray | None) -> ReviewChange:
    event = review.event
    if vector is None or review.weight is None:
        return ReviewDeleted(event.listing_id, event.review_id, event.event_id, event.occurred_at)
    return ReviewPosted(
        event.listing_id,
        ReviewContribution(event.review_id, event.event_id, review.weight, vector),
        event.occurred_at,
    )


def _mismatch_message(outcome: ReviewOutcome) -> str:
    return (
        f"review event field 'listing_id': review {outcome.review_id} belongs to listing "
        f"{outcome.stored_listing_id}, not {outcome.listing_id}; a review cannot move, "
        "delete it under its listing and post it with a new review_id"
    )
