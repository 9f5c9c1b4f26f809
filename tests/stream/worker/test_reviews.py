"""ReviewPipeline with a stand-in encoder and sink, and the real review store on a throwaway Redis."""

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from stream.contracts.events import EventDecoder
from stream.contracts.index import IndexSchema
from stream.errors import StoreUnavailable, TritonError, TritonUnavailable
from stream.features.reviews import review_weight, weighted_mean
from stream.retry import NO_RETRY, RetryPolicy, retried
from stream.store.reviews import ReviewStore
from stream.worker.delivery import Delivery, PipelineTopics, RawMessage
from stream.worker.reviews import ReviewPipeline
from tests.conftest import RecordingSink, hashed_vector

TOPICS = PipelineTopics(embeddings="emb", deadletter="dlq")
DIMS = 512
ReviewFactory = Callable[..., dict[str, Any]]


class HashEncoder:
    """Deterministic 512-d vectors from the text; can be told to be unavailable a number of times.

    Like the real encoder, it waits out its outages under its retry policy.
    """

    def __init__(
        self, outages: int = 0, error: type[Exception] = TritonUnavailable, poison: str | None = None
    ) -> None:
        self.outages, self.error, self.poison, self.calls = outages, error, poison, []
        self.retry = NO_RETRY

    @retried("triton")
    async def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if self.outages:
            self.outages -= 1
            raise self.error("triton down")
        if self.poison is not None and any(self.poison in text for text in texts):
            raise TritonError(f"the model cannot embed {self.poison}")
        return np.stack([self.vector(text) for text in texts])

    @staticmethod
    def vector(text: str) -> np.ndarray:
        return hashed_vector(text, DIMS)


class RecordingRefuser:
    """Records the listings to re-fuse; waits out its outages like the real one's store and encoder."""

    def __init__(self, outages: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.outages = outages
        self.retry = NO_RETRY

    @retried("refusion")
    async def __call__(self, listing_ids: list[str]) -> None:
        if self.outages:
            self.outages -= 1
            raise StoreUnavailable("redis down")
        self.calls.append(listing_ids)


@pytest.fixture
async def store(redis_url: str, schemas_dir: Path) -> AsyncIterator[ReviewStore]:
    schema = IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml")
    client = Redis.from_url(redis_url)
    yield ReviewStore(client, schema.model_copy(update={"key_prefix": f"rp{uuid.uuid4().hex[:8]}"}))
    await client.aclose()


@pytest.fixture
def review_factory() -> ReviewFactory:
    """Build valid ``review.posted`` events; keyword arguments override or add fields."""

    def build(**overrides: Any) -> dict[str, Any]:
        event = {
            "event_id": uuid.uuid4().hex,
            "type": "review.posted",
            "review_id": f"rev-{uuid.uuid4().hex[:8]}",
            "listing_id": "toy-0001",
            "occurred_at": "2025-03-01T10:00:00Z",
            "rating": 5,
            "title": "Great gift",
            "text": "My daughter plays with it every day.",
            "helpful_votes": 2,
            "verified_purchase": True,
        }
        event.update(overrides)
        return event

    return build


def deletion(posted: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "type": "review.deleted",
        "review_id": posted["review_id"],
        "listing_id": posted["listing_id"],
        "occurred_at": "2025-04-01T10:00:00Z",
    }


def message(event: dict[str, Any], offset: int = 0) -> RawMessage:
    value = json.dumps(event).encode()
    return RawMessage("toys.reviews.v1", 0, offset, 1, event["listing_id"].encode(), value)


def pipeline(
    store: ReviewStore,
    encoder: Any,
    sink: RecordingSink,
    refuser: Any,
    schemas_dir: Path,
    sleeps: list[float],
) -> ReviewPipeline:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    store.retry = encoder.retry = refuser.retry = RetryPolicy(
        0.5, 2.0, sleep=record_sleep
    )  # as in the worker
    return ReviewPipeline(
        decoder=EventDecoder(schemas_dir), encoder=encoder, store=store, refuse=refuser,
        delivery=Delivery(sink, TOPICS, "test-worker"),
    )  # fmt: skip


def expected_vector(events: list[dict[str, Any]]) -> np.ndarray:
    vectors = np.stack([HashEncoder.vector(f"{e['title']}\n{e['text']}") for e in events])
    weights = [
        review_weight(
            e.get("helpful_votes"), e.get("verified_purchase"), datetime.fromisoformat(e["occurred_at"])
        )
        for e in events
    ]
    return weighted_mean(vectors, np.array(weights))


async def test_posted_reviews_are_embedded_aggregated_and_refused(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    encoder, refuser = HashEncoder(), RecordingRefuser()
    events = [
        review_factory(),
        review_factory(
            listing_id="toy-0002",
            title="还可以",
            text="孩子很喜欢。",
            occurred_at="2025-05-01T08:00:00+08:00",
        ),
        review_factory(helpful_votes=40, text="Sturdy and bright."),
    ]

    await pipeline(store, encoder, RecordingSink(), refuser, schemas_dir, []).process(
        [message(e, i) for i, e in enumerate(events)]
    )

    assert encoder.calls == [[f"{e['title']}\n{e['text']}" for e in events]], "one Triton call per batch"
    assert refuser.calls == [["toy-0001", "toy-0002"]]
    vectors = await store.review_vectors(["toy-0001", "toy-0002"])
    np.testing.assert_allclose(vectors["toy-0001"], expected_vector([events[0], events[2]]), atol=1e-6)
    np.testing.assert_allclose(vectors["toy-0002"], expected_vector([events[1]]), atol=1e-6)


async def test_deletes_and_reposts_update_the_aggregate(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    refuser = RecordingRefuser()
    keep, gone, edited = review_factory(), review_factory(), review_factory()
    run = pipeline(store, HashEncoder(), RecordingSink(), refuser, schemas_dir, [])
    await run.process([message(keep), message(gone), message(edited)])

    repost = review_factory(
        review_id=edited["review_id"], text="Broke after a week.", occurred_at="2025-06-01T00:00:00Z"
    )
    await run.process([message(deletion(gone)), message(repost)])

    vector = (await store.review_vectors(["toy-0001"]))["toy-0001"]
    np.testing.assert_allclose(vector, expected_vector([keep, repost]), atol=1e-6)
    assert refuser.calls == [["toy-0001"], ["toy-0001"]]


async def test_batches_finished_out_of_order_leave_what_in_order_would(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    """Two batches in flight can finish in either order: the later edit and the delete still win."""
    edited, gone = review_factory(), review_factory()
    repost = review_factory(
        review_id=edited["review_id"], text="Broke after a week.", occurred_at="2025-06-01T00:00:00Z"
    )
    first, second = [message(edited), message(gone)], [message(deletion(gone)), message(repost)]
    run = pipeline(store, HashEncoder(), RecordingSink(), RecordingRefuser(), schemas_dir, [])

    await run.process(second)
    await run.process(first)

    vector = (await store.review_vectors(["toy-0001"]))["toy-0001"]
    np.testing.assert_allclose(vector, expected_vector([repost]), atol=1e-6)


async def test_review_without_text_removes_the_review_without_embedding(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    encoder = HashEncoder()
    posted = review_factory()
    run = pipeline(store, encoder, RecordingSink(), RecordingRefuser(), schemas_dir, [])
    await run.process([message(posted)])

    blank = review_factory(review_id=posted["review_id"], text="  ")
    del blank["title"]
    await run.process([message(blank)])

    assert len(encoder.calls) == 1
    assert (await store.review_vectors(["toy-0001"]))["toy-0001"] is None


async def test_replay_changes_nothing_but_is_refused_again(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    refuser, posted = RecordingRefuser(), review_factory()
    run = pipeline(store, HashEncoder(), RecordingSink(), refuser, schemas_dir, [])
    await run.process([message(posted)])
    before = (await store.aggregates(["toy-0001"]))["toy-0001"]

    await run.process([message(posted)])

    after = (await store.aggregates(["toy-0001"]))["toy-0001"]
    np.testing.assert_array_equal(after.weighted_sum, before.weighted_sum)
    assert after.count == before.count == 1
    assert refuser.calls == [["toy-0001"], ["toy-0001"]], (
        "a replay re-fuses in case the first run stopped early"
    )


async def test_a_post_replayed_after_its_delete_stays_deleted(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    refuser, sink, posted = RecordingRefuser(), RecordingSink(), review_factory()
    run = pipeline(store, HashEncoder(), sink, refuser, schemas_dir, [])
    await run.process([message(posted)])
    await run.process([message(deletion(posted), 1)])

    await run.process([message(posted, 2)])  # e.g. replayed from the dead-letter topic

    assert (await store.review_vectors(["toy-0001"]))["toy-0001"] is None
    assert refuser.calls == [["toy-0001"], ["toy-0001"]] and sink.on("dlq") == []


async def test_a_review_text_with_a_lone_surrogate_is_dead_lettered(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    sink, good, bad = RecordingSink(), review_factory(), review_factory(text="Nice \ud800 toy")
    value = json.dumps(bad).encode()  # the valid JSON escape "\ud800"

    await pipeline(store, HashEncoder(), sink, RecordingRefuser(), schemas_dir, []).process(
        [RawMessage("toys.reviews.v1", 0, 0, 1, b"toy-0001", value), message(good, 1)]
    )

    [dead] = sink.on("dlq")
    assert dead["reason"] == "invalid_field" and "surrogate" in dead["message"]
    assert (await store.aggregates(["toy-0001"]))["toy-0001"].count == 1


async def test_delete_of_unknown_review_is_not_refused(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    refuser, sink = RecordingRefuser(), RecordingSink()

    await pipeline(store, HashEncoder(), sink, refuser, schemas_dir, []).process(
        [message(deletion(review_factory()))]
    )

    assert refuser.calls == [] and sink.sent == []


async def test_invalid_events_are_dead_lettered_and_the_rest_processed(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    sink, good = RecordingSink(), review_factory()
    batch = [
        RawMessage("toys.reviews.v1", 0, 0, 1, b"k", b'{"broken'),
        message(review_factory(rating=9), 1),
        message(review_factory(occurred_at="2999-01-01T00:00:00Z"), 2),
        message(good, 3),
    ]

    await pipeline(store, HashEncoder(), sink, RecordingRefuser(), schemas_dir, []).process(batch)

    dead = sink.on("dlq")
    assert [d["reason"] for d in dead] == ["invalid_json", "schema_violation", "invalid_field"]
    assert base64.b64decode(dead[0]["original_b64"]) == b'{"broken'
    assert "occurred_at" in dead[2]["message"]
    assert (await store.aggregates(["toy-0001"]))["toy-0001"].count == 1


async def test_review_moved_to_another_listing_is_dead_lettered(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    sink, refuser, posted = RecordingSink(), RecordingRefuser(), review_factory()
    run = pipeline(store, HashEncoder(), sink, refuser, schemas_dir, [])
    await run.process([message(posted)])

    await run.process([message(review_factory(review_id=posted["review_id"], listing_id="toy-0002"))])

    [dead] = sink.on("dlq")
    assert dead["reason"] == "invalid_field" and "belongs to listing toy-0001" in dead["message"]
    assert refuser.calls == [["toy-0001"]]


async def test_outages_are_retried_until_they_end(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    sleeps: list[float] = []
    refuser = RecordingRefuser(outages=1)

    await pipeline(store, HashEncoder(outages=3), RecordingSink(), refuser, schemas_dir, sleeps).process(
        [message(review_factory())]
    )

    assert sleeps == [0.5, 1.0, 2.0, 0.5]
    assert refuser.calls == [["toy-0001"]]
    assert (await store.aggregates(["toy-0001"]))["toy-0001"].count == 1


async def test_a_failing_batch_is_split_and_only_the_culprit_dead_lettered(
    store: ReviewStore, schemas_dir: Path, review_factory: ReviewFactory
) -> None:
    sink, refuser = RecordingSink(), RecordingRefuser()
    events = [review_factory(), review_factory(text="POISON"), review_factory()]

    await pipeline(store, HashEncoder(poison="POISON"), sink, refuser, schemas_dir, []).process(
        [message(e, i) for i, e in enumerate(events)]
    )

    assert [(d["reason"], d["source"]["offset"], d["message"]) for d in sink.on("dlq")] == [
        ("processing_error", 1, "TritonError: the model cannot embed POISON")
    ]
    assert refuser.calls == [["toy-0001"], ["toy-0001"]]
    assert (await store.aggregates(["toy-0001"]))["toy-0001"].count == 2
