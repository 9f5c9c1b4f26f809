"""The batch skeleton both pipelines share: decode each message, handle the valid ones together, finish each."""

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from stream import metrics
from stream.errors import FeatureServiceError, InvalidEventError, StoreUnavailable, TritonUnavailable
from stream.worker.delivery import Delivery, RawMessage

log = logging.getLogger(__name__)
Decoded = TypeVar("Decoded")
Outcome = TypeVar("Outcome")


class BatchPipeline(ABC, Generic[Decoded, Outcome]):
    """Invalid messages are dead-lettered one by one; a batch the service cannot handle is dead-lettered whole.

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
        if not valid:
            return
        metrics.batch_size_events.labels(batch[0].topic).observe(len(valid))
        try:
            outcomes = await self.handle([event for _, event in valid])
        except (TritonUnavailable, StoreUnavailable):
            raise
        except FeatureServiceError as exc:
            log.error("batch of %d %s events failed, dead-lettering it: %s", len(valid), batch[0].topic, exc)
            for raw, _ in valid:
                await self.delivery.deadletter(raw, "processing_error", str(exc))
            return
        for (raw, event), outcome in zip(valid, outcomes, strict=True):
            await self.finish(raw, event, outcome)
