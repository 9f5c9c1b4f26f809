"""The batch skeleton both pipelines share: per-message decoding, poison isolation, outages never dead-lettered."""

import asyncio

import pytest

from stream.errors import (
    InvalidEventError,
    StoreError,
    StoreUnavailable,
    TritonUnavailable,
    VectorSetMismatch,
)
from stream.worker.batch import BatchPipeline
from stream.worker.delivery import Delivery, PipelineTopics, RawMessage
from tests.conftest import RecordingSink


class Upper(BatchPipeline[str, str]):
    """Decodes ASCII text, 'handles' it by upper-casing, and records what it finished."""

    def __init__(
        self, sink: RecordingSink, failure: Exception | None = None, poison: str | None = None
    ) -> None:
        super().__init__(Delivery(sink, PipelineTopics(embeddings="emb", deadletter="dlq"), "test-worker"))
        self.failure, self.poison, self.finished, self.handled = failure, poison, [], []

    def decode(self, raw: RawMessage) -> str:
        if not raw.value.isascii():
            raise InvalidEventError("invalid_utf8", "not ASCII")
        if raw.value == b"crash":
            raise KeyError("crash")
        return raw.value.decode()

    async def handle(self, events: list[str]) -> list[str]:
        self.handled.append(events)
        if self.failure is not None:
            raise self.failure
        if self.poison in events:
            raise ValueError(f"cannot handle {self.poison!r}")
        return [event.upper() for event in events]

    async def finish(self, raw: RawMessage, event: str, outcome: str) -> None:
        self.finished.append((raw.offset, outcome))


def batch(*values: bytes) -> list[RawMessage]:
    return [RawMessage("t", 0, offset, None, None, value) for offset, value in enumerate(values)]


async def test_invalid_messages_are_dead_lettered_and_the_rest_handled_together() -> None:
    sink = RecordingSink()
    pipeline = Upper(sink)

    await pipeline.process(batch(b"a", "é".encode(), b"c"))

    assert [(d["reason"], d["source"]["offset"]) for d in sink.on("dlq")] == [("invalid_utf8", 1)]
    assert pipeline.handled == [["a", "c"]]
    assert pipeline.finished == [(0, "A"), (2, "C")]


async def test_a_failing_batch_is_split_until_only_the_culprit_is_dead_lettered() -> None:
    sink = RecordingSink()
    pipeline = Upper(sink, poison="d")

    await pipeline.process(batch(b"a", b"b", b"c", b"d", b"e"))

    assert [(d["reason"], d["source"]["offset"], d["message"]) for d in sink.on("dlq")] == [
        ("processing_error", 3, "ValueError: cannot handle 'd'")
    ]
    assert pipeline.finished == [(0, "A"), (1, "B"), (2, "C"), (4, "E")]


async def test_a_batch_that_always_fails_dead_letters_each_event_with_the_reason() -> None:
    sink = RecordingSink()

    await Upper(sink, StoreError("Redis refused it")).process(batch(b"a", b"b"))

    assert [(d["reason"], d["message"]) for d in sink.on("dlq")] == [
        ("processing_error", "StoreError: Redis refused it")
    ] * 2


async def test_a_decoder_bug_costs_one_event() -> None:
    sink = RecordingSink()
    pipeline = Upper(sink)

    await pipeline.process(batch(b"a", b"crash", b"c"))

    assert [(d["reason"], d["message"]) for d in sink.on("dlq")] == [
        ("processing_error", "KeyError: 'crash'")
    ]
    assert pipeline.finished == [(0, "A"), (2, "C")]


@pytest.mark.parametrize(
    "outage",
    [
        TritonUnavailable("triton down"),
        StoreUnavailable("redis down"),
        VectorSetMismatch("asked M value mismatch with existing vector set"),
    ],
)
async def test_an_outage_or_a_vector_set_built_otherwise_propagates_instead_of_dead_lettering(
    outage: Exception,
) -> None:
    sink = RecordingSink()

    with pytest.raises(type(outage)):
        await Upper(sink, outage).process(batch(b"a"))
    assert sink.on("dlq") == []


class SlowFirstAck(Upper):
    """The first event's finish waits until another key's event is finished, as a slow ack would."""

    def __init__(self, sink: RecordingSink) -> None:
        super().__init__(sink)
        self.other_done = asyncio.Event()

    async def finish(self, raw: RawMessage, event: str, outcome: str) -> None:
        if raw.offset == 0:
            await self.other_done.wait()
        self.finished.append((raw.offset, outcome))
        if raw.key == b"b":
            self.other_done.set()


async def test_events_of_other_keys_finish_meanwhile_and_one_keys_events_in_order() -> None:
    pipeline = SlowFirstAck(RecordingSink())
    messages = [RawMessage("t", 0, offset, None, key, b"x") for offset, key in enumerate([b"a", b"b", b"a"])]

    await asyncio.wait_for(pipeline.process(messages), timeout=30)  # finishing one at a time would deadlock

    assert [offset for offset, _ in pipeline.finished] == [1, 0, 2]
