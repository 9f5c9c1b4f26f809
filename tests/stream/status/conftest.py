"""Snapshot factories for the status tests: a healthy stack, with any fact overridden."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.deadletters.records import DeadLetter
from stream.status.probes import DeadLetterTail, ModelState, WorkerHealth
from stream.status.snapshot import Server, Snapshot
from stream.status.summary import Freshness, TopicLag, WorkerFigures

SnapshotFactory = Callable[..., Snapshot]
TAKEN_AT = datetime(2026, 12, 1, 20, 30, 5, tzinfo=UTC)


def dead_letter(**overrides: Any) -> DeadLetter:
    """A dead letter of an invalid listing event."""
    fields: dict[str, Any] = {
        "topic": "toys.deadletter.v1",
        "partition": 0,
        "offset": 4,
        "event_id": "e-1",
        "failed_at": datetime(2026, 12, 1, 20, 29, 0, tzinfo=UTC),
        "reason": "invalid_json",
        "message": "Expecting value: line 1 column 1 (char 0)",
        "worker": "w-1",
        "source_topic": "toys.listings.v1",
        "source_partition": 2,
        "source_offset": 17,
        "source_timestamp_ms": None,
        "key": b"listing-9",
        "original": b"{not json",
        "original_size": None,
        "original_sha256": None,
        "truncated": False,
    }
    return DeadLetter(**{**fields, **overrides})


def healthy_figures() -> WorkerFigures:
    """What a busy, healthy worker's metrics say."""
    return WorkerFigures(
        interval_s=1.0,
        throughput={"toys.listings.v1": 12.0, "toys.reviews.v1": 3.5},
        lag={"toys.listings.v1": TopicLag(9.0, 2, 6.0, 1.5)},
        freshness={
            "event_time": {"toys.listings.v1": Freshness(0.42, 1.9, 12.0, "interval")},
            "produce_time": {"toys.listings.v1": Freshness(0.31, 0.88, 40.0, "since_start")},
        },
        batches_in_flight={"toys.listings.v1": 1.0},
        deadletters={"invalid_json": 2.0, "schema_violation": 5.0},
        model_info={
            "model_version": "listing_embedder/3 fusion=fusion-2",
            "listing_model": "listing_embedder/3",
            "fusion": "fusion-2",
        },
    )


def healthy_snapshot() -> Snapshot:
    """Every server up, every model ready, the worker ready with both agents running."""
    servers = [
        Server(name, f"127.0.0.1:{port}", True, "ok")
        for name, port in (("kafka", 19092), ("redis", 16379), ("triton", 18000))
    ]
    return Snapshot(
        taken_at=TAKEN_AT,
        servers=[
            *servers,
            Server("prometheus", "127.0.0.1:19090", True, "ready", required=False),
            Server("worker", "127.0.0.1:16066", True, "ready"),
        ],
        models=[ModelState("fusion", "2", True, "ready"), ModelState("text_encoder", "1", True, "ready")],
        worker=WorkerHealth(
            "ready",
            "listing_embedder/3 fusion=fusion-2",
            {"listing_events": "running", "review_events": "running"},
            [],
        ),
        figures=healthy_figures(),
        deadletters=DeadLetterTail(7, dead_letter()),
        unread={},
        store=[],
    )


@pytest.fixture
def snapshot_factory() -> SnapshotFactory:
    """Build a snapshot: a healthy stack, with keyword arguments replacing its facts."""

    def build(**overrides: Any) -> Snapshot:
        return replace(healthy_snapshot(), **overrides)

    return build
