"""What every pipeline publishes through: consumed records, embedding announcements and dead letters."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from stream import metrics
from stream.contracts.events import DEADLETTER_MAX_KEY_BYTES, deadletter_record
from stream.errors import DeadLetterReason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    """A Kafka record as consumed: the bytes and where they came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes


class EventSink(Protocol):
    """Delivers an outgoing JSON event to a topic (returns once the broker has it)."""

    async def publish(self, topic: str, key: bytes | None, value: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class PipelineTopics:
    """Where pipelines publish."""

    embeddings: str
    deadletter: str


@dataclass(frozen=True)
class Delivery:
    """A pipeline's way out: the sink, its topics and the worker's name (for dead-letter records)."""

    sink: EventSink
    topics: PipelineTopics
    worker: str

    async def deadletter(self, raw: RawMessage, reason: DeadLetterReason, message: str) -> None:
        """Publish ``raw`` to the dead-letter topic with its reason, and count it."""
        metrics.deadletter_total.labels(raw.topic, reason).inc()
        metrics.events_processed_total.labels(raw.topic, metrics.DEADLETTER_OUTCOME).inc()
        log.warning(
            "dead-lettering %s[%d]@%d: %s: %.500s", raw.topic, raw.partition, raw.offset, reason, message
        )
        record = deadletter_record(
            value=raw.value,
            key=raw.key,
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            timestamp_ms=raw.timestamp_ms,
            reason=reason,
            message=message,
            worker=self.worker,
            now=datetime.now(UTC),
        )
        oversized_key = raw.key is not None and len(raw.key) > DEADLETTER_MAX_KEY_BYTES
        await self.sink.publish(self.topics.deadletter, None if oversized_key else raw.key, record)

    async def announce(self, listing_id: str, record: dict[str, Any]) -> None:
        """Publish a ``toys.embeddings.v1`` record, keyed by listing id."""
        await self.sink.publish(self.topics.embeddings, listing_id.encode("utf-8"), record)
