"""The batch skeleton both pipelines share: decode each message, handle the valid ones together, finish each."""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from stream import metrics
from stream.errors import InvalidEventError, StoreUnavailable, TritonUnavailable, VectorSetMismatch
from stream.worker.delivery import Delivery, RawMessage

log = logging.getLogger(__name__)
Decoded = TypeVar("Decoded")
Outcome = TypeVar("Outcome")


class BatchPipeline(ABC, Generic[Decoded, Outcome]):
    """Invalid messages are dead-lettered one by one; a failing batch is split until its culprit is found.

    An outage (Triton or Redis unavailable) is never a reason to dead-letter: the clients wait it out, and
    if one gives up anyway the error propagates so that no offset is committed.
    """

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    @abstractmethod
    def decode(self, raw: RawMessage) -> Decoded:
        """Check and decode one message.

        Raises:
            InvalidEventError: the message is not a valid event (it is dead-lettered with the reason).
        """

    @abstractmethod
    async def handle(self, events: list[Decoded]) -> list[Outcome]:
        """Embed and store the valid events of a batch, returning one outcome per event, in order."""

    @abstractmethod
    async def finish(self, raw: RawMessage, event: Decoded, outcome: Outcome) -> None:
        """Count, announce or dead-letter one handled event."""

    async def process(self, batch: Sequence[RawMessage]) -> None:
        """Handle a batch in order; returns only when every message is stored, skipped or dead-lettered."""
        valid: list[tuple[RawMessage, Decoded]] = []
        for raw in batch:
            metrics.events_consumed_total.labels(raw.topic).inc()
            try:
                valid.append((raw, self.decode(raw)))
            except InvalidEventError as exc:
                await self.delivery.deadletter(raw, exc.reason, exc.message)
            except Exception as exc:
                log.exception("decoding %s[%d]@%d failed", raw.topic, raw.partition, raw.offset)
                await self.delivery.deadletter(raw, "processing_error", describe(exc))
        if valid:
            metrics.batch_size_events.labels(batch[0].topic).observe(len(valid))
            await self._handle_isolated(valid)

    async def _handle_isolated(self, items: list[tuple[RawMessage, Decoded]]) -> None:
        """Handle ``items`` together; if that fails, split them in halves until the culprit stands alone.

        Only the event that fails on its own is dead-lettered (``processing_error``, with the exception's
        type and message); its neighbours are stored. Outages propagate: they are no event's fault. So
        does a vector set built otherwise than the layout, which would refuse every event: the agent dies
        and the worker stops, its batch uncommitted, and a restarted one says why at its start-up check.
        """
        try:
            outcomes = await self.handle([event for _, event in items])
        except (TritonUnavailable, StoreUnavailable, VectorSetMismatch):
            raise
        except Exception as exc:  # noqa: BLE001 - whatever one event triggers must not stop the others
            if len(items) > 1:
                log.warning(
                    "batch of %d %s events failed (%s); splitting it", len(items), items[0][0].topic, exc
                )
                middle = len(items) // 2
                await self._handle_isolated(items[:middle])
                await self._handle_isolated(items[middle:])
                return
            raw = items[0][0]
            log.error(
                "%s[%d]@%d failed on its own, dead-lettering it: %r",
                raw.topic,
                raw.partition,
                raw.offset,
                exc,
            )
            await self.delivery.deadletter(raw, "processing_error", describe(exc))
            return
        await self._finish_all(
            [(raw, event, outcome) for (raw, event), outcome in zip(items, outcomes, strict=True)]
        )

    async def _finish_all(self, handled: list[tuple[RawMessage, Decoded, Outcome]]) -> None:
        """Finish events of different keys concurrently, so that their announcements' acks overlap instead of
        adding up; a key's events (one listing's) are finished, hence announced, in their order."""
        by_key: dict[bytes | None, list[tuple[RawMessage, Decoded, Outcome]]] = {}
        for item in handled:
            by_key.setdefault(item[0].key, []).append(item)

        async def in_order(items: list[tuple[RawMessage, Decoded, Outcome]]) -> None:
            for raw, event, outcome in items:
                await self.finish(raw, event, outcome)

        await asyncio.gather(*(in_order(items) for items in by_key.values()))


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, for dead-letter records (pure).

    >>> describe(ValueError("bad"))
    'ValueError: bad'
    """
    return f"{type(exc).__name__}: {exc}"
