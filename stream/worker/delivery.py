"""What every pipeline shares: consumed records, publishing, dead letters and retry-until-available."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from stream import metrics
from stream.contracts.events import deadletter_record
from stream.errors import DeadLetterReason, StoreUnavailable, TritonUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


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
class RetryPolicy:
    """Exponential back-off while a server is unavailable; retries never give up, so nothing is lost."""

    initial_s: float = 0.5
    max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return float(min(self.max_s, self.initial_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class PipelineTopics:
    """Where pipelines publish."""

    embeddings: str
    deadletter: str


@dataclass(frozen=True)
class Delivery:
    """A pipeline's way out: the sink, its topics, the worker's name and how it waits out outages."""

    sink: EventSink
    topics: PipelineTopics
    worker: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def until_available(self, component: str, call: Callable[[T], Awaitable[R]], argument: T) -> R:
        """Call ``call(argument)``, retrying with back-off for as long as Triton or Redis is unavailable."""
        attempt = 0
        while True:
            try:
                return await call(argument)
            except (TritonUnavailable, StoreUnavailable) as exc:
                attempt += 1
                delay = self.retry.delay(attempt)
                metrics.retries_total.labels(component).inc()
                log.warning("%s unavailable (attempt %d), retrying in %.1fs: %s", component, attempt, delay, exc)
                await self.sleep(delay)

    async def deadletter(self, raw: RawMessage, reason: DeadLetterReason, message: str) -> None:
        """Publish ``raw`` to the dead-letter topic with its reason, and count it."""
        metrics.deadletter_total.labels(raw.topic, reason).inc()
        metrics.events_processed_total.labels(raw.topic, "deadletter").inc()
        log.warning("dead-lettering %s[%d]@%d: %s: %s", raw.topic, raw.partition, raw.offset, reason, message)
        record = deadletter_record(
            value=raw.value, key=raw.key, topic=raw.topic, partition=raw.partition, offset=raw.offset,
            timestamp_ms=raw.timestamp_ms, reason=reason, message=message, worker=self.worker,
            now=datetime.now(UTC),
        )
        await self.sink.publish(self.topics.deadletter, raw.key, record)

    async def announce(self, listing_id: str, record: dict[str, Any]) -> None:
        """Publish a ``toys.embeddings.v1`` record, keyed by listing id."""
        await self.sink.publish(self.topics.embeddings, listing_id.encode("utf-8"), record)
