"""The review pipeline: decode, embed, fold into each listing's review aggregate, then re-fuse."""

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from stream import metrics
from stream.contracts.events import EventDecoder, ReviewEvent
from stream.errors import FeatureServiceError, InvalidEventError
from stream.features.reviews import ReviewContribution, review_text, review_weight
from stream.features.vectors import FloatArray, l2_normalize
from stream.store.reviews import ReviewChange, ReviewDeleted, ReviewOutcome, ReviewPosted, ReviewStore
from stream.worker.delivery import Delivery, RawMessage

log = logging.getLogger(__name__)
# events_processed_total outcome per store status; listing_mismatch is dead-lettered instead.
OUTCOMES = {
    "added": "applied",
    "replaced": "applied",
    "removed": "applied",
    "duplicate": "already_applied",
    "unknown": "stale",
}
Refuse = Callable[[list[str]], Awaitable[None]]


class TextEncoder(Protocol):
    """Embeds texts (see :class:`stream.inference.triton.TritonEncoder`)."""

    async def embed_texts(self, texts: Sequence[str]) -> Any: ...


@dataclass(frozen=True)
class DecodedReview:
    """A valid review event, with the weight of a posted one."""

    raw: RawMessage
    event: ReviewEvent
    weight: float | None  # None for deletes and for posts without text (they remove the review)


def posting_weight(event: ReviewEvent) -> float:
    """The review's weight, or ``invalid_field`` when occurred_at is too far from the present to weigh.

    Raises:
        InvalidEventError: the weight is not a positive finite number.
    """
    try:
        weight = review_weight(event.helpful_votes, event.verified_purchase, event.occurred_at)
    except OverflowError:
        weight = math.inf
    if not (math.isfinite(weight) and weight > 0):
        raise InvalidEventError(
            "invalid_field",
            f"review event field 'occurred_at': {event.occurred_at.isoformat()} is too far from 2020 to weigh "
            "the review by recency; send the time the review was posted",
        )
    return weight


class ReviewPipeline:
    """Turns a batch of review messages into updated review aggregates and re-fused listings.

    Posted reviews (title and text) are embedded in one call, then every change is applied in
    order. ``refuse`` gets the listings whose aggregate changed, and also those whose events were
    replays: a worker that stopped between storing and re-fusing has to re-fuse on the replay.
    A post with neither title nor text removes the review, since there is nothing to embed.
    """

    def __init__(
        self,
        *,
        decoder: EventDecoder,
        encoder: TextEncoder,
        store: ReviewStore,
        delivery: Delivery,
        refuse: Refuse,
        model_name: str = "text_multilingual_encoder",
    ) -> None:
        """Wire the pipeline.

        Args:
            decoder: checks and decodes review messages.
            encoder: embeds review texts with the ``reviews`` vector's model.
            store: the review aggregates.
            delivery: dead-letter topic, worker name and retry policy.
            refuse: re-fuses the given listings (e.g. :meth:`stream.worker.refusion.Refuser.refuse`).
            model_name: label of the encoder in metrics.
        """
        self._decoder = decoder
        self._encoder = encoder
        self._store = store
        self._delivery = delivery
        self._refuse = refuse
        self._model_name = model_name

    async def process(self, batch: Sequence[RawMessage]) -> None:
        """Handle a batch in order; returns once every message is applied, skipped or dead-lettered."""
        valid = [decoded for raw in batch if (decoded := await self._decode(raw)) is not None]
        if not valid:
            return
        metrics.batch_size_events.labels(valid[0].raw.topic).observe(len(valid))
        try:
            outcomes = await self._embed_and_apply(valid)
            touched = [o.listing_id for o in outcomes if o.changed or o.status == "duplicate"]
            if touched:
                await self._delivery.until_available("refusion", self._refuse, list(dict.fromkeys(touched)))
        except FeatureServiceError as exc:
            log.error("batch of %d review events failed, dead-lettering it: %s", len(valid), exc)
            for review in valid:
                await self._delivery.deadletter(review.raw, "processing_error", str(exc))
            return
        for review, outcome in zip(valid, outcomes, strict=True):
            await self._count(review, outcome)

    async def _count(self, review: DecodedReview, outcome: ReviewOutcome) -> None:
        if outcome.status == "listing_mismatch":
            await self._delivery.deadletter(review.raw, "invalid_field", _mismatch_message(outcome))
        else:
            metrics.events_processed_total.labels(review.raw.topic, OUTCOMES[outcome.status]).inc()

    async def _decode(self, raw: RawMessage) -> DecodedReview | None:
        metrics.events_consumed_total.labels(raw.topic).inc()
        try:
            event = self._decoder.decode_review(raw.value, raw.key)
            has_text = event.type == "review.posted" and bool(review_text(event.title, event.text))
            return DecodedReview(raw, event, posting_weight(event) if has_text else None)
        except InvalidEventError as exc:
            await self._delivery.deadletter(raw, exc.reason, exc.message)
            return None

    async def _embed_and_apply(self, reviews: list[DecodedReview]) -> list[ReviewOutcome]:
        posted = [review for review in reviews if review.weight is not None]
        texts = [review_text(review.event.title, review.event.text) for review in posted]
        vectors = await self._delivery.until_available("triton", self._timed_embed, texts)
        found = {id(review): vector for review, vector in zip(posted, vectors, strict=True)}
        changes = [_change(review, found.get(id(review))) for review in reviews]
        return list(await self._delivery.until_available("redis", self._timed_apply, changes))

    async def _timed_embed(self, texts: list[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self._store.dims), dtype=np.float32)
        with metrics.triton_request_seconds.labels(self._model_name).time():
            return l2_normalize(await self._encoder.embed_texts(texts))

    async def _timed_apply(self, changes: list[ReviewChange]) -> list[ReviewOutcome]:
        with metrics.redis_write_seconds.time():
            return await self._store.apply(changes)


def _change(review: DecodedReview, vector: FloatArray | None) -> ReviewChange:
    event = review.event
    if vector is None or review.weight is None:
        return ReviewDeleted(event.listing_id, event.review_id, event.event_id)
    return ReviewPosted(
        event.listing_id, ReviewContribution(event.review_id, event.event_id, review.weight, vector)
    )


def _mismatch_message(outcome: ReviewOutcome) -> str:
    return (
        f"review event field 'listing_id': review {outcome.review_id} belongs to listing "
        f"{outcome.stored_listing_id}, not {outcome.listing_id}; a review cannot move, "
        "delete it under its listing and post it with a new review_id"
    )
