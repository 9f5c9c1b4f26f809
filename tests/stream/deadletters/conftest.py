"""A factory of dead letters built the way the worker builds them (``deadletter_record``)."""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder, deadletter_record
from stream.deadletters.records import DeadLetter, parse_deadletter

DeadLetterFactory = Callable[..., DeadLetter]
FAILED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def decoder() -> EventDecoder:
    return EventDecoder(REPO_ROOT / "schemas")


@pytest.fixture
def deadletter_factory(decoder: EventDecoder) -> DeadLetterFactory:
    """Build a DeadLetter from ``deadletter_record`` fields (any overridden) at a dead-letter position."""
    offsets = iter(range(10**6))

    def build(dlq_offset: int | None = None, dlq_partition: int = 0, **overrides: Any) -> DeadLetter:
        fields: dict[str, Any] = {
            "value": b'{"type": "listing.upserted", "version": "three"}',
            "key": b"toy-0001",
            "topic": "toys.listings.v1",
            "partition": 2,
            "offset": 17,
            "timestamp_ms": 1_740_830_400_000,
            "reason": "schema_violation",
            "message": "listing event field 'version': 'three' is not of type 'integer'",
            "worker": "toyfuse@host",
            "now": FAILED_AT,
        }
        record = deadletter_record(**{**fields, **overrides})
        position = next(offsets) if dlq_offset is None else dlq_offset
        value = json.dumps(record).encode()
        return parse_deadletter(decoder, "toys.deadletter.v1", dlq_partition, position, value)

    return build
