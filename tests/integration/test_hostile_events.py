"""Hundreds of hostile events from hypothesis through the real worker: each is stored or dead-lettered
with a specific reason, never as an unexpected processing error, and a good event after them is stored."""

import asyncio
import json
import urllib.request
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.config import Settings
from stream.producer import reliable_producer
from stream.store.client import EmbeddingClient
from tests.integration.conftest import TopicReader, eventually
from tests.integration.test_faults import key_of
from tests.stream.contracts.test_events_hypothesis import JSON, _dumps, mutated_events

pytestmark = pytest.mark.usefixtures("running_worker")
ONE_RUN = settings(max_examples=1, deadline=None, database=None, suppress_health_check=list(HealthCheck))
Payload = tuple[str, bytes | dict[str, Any]]
PAYLOADS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["listings", "reviews"]), st.binary(max_size=300)),
        st.tuples(st.sampled_from(["listings", "reviews"]), JSON.map(_dumps)),
        mutated_events().map(
            lambda mutated: ("listings" if "listings" in mutated[0] else "reviews", mutated[1])
        ),
    ),
    min_size=400,
    max_size=400,
)


def good_listing(listing_id: str) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex, "type": "listing.upserted", "listing_id": listing_id, "version": 1,
        "occurred_at": "2026-01-05T10:00:00Z", "title": "Wooden Train Set", "description": "After the storm.",
    }  # fmt: skip


async def stream_hostile(settings: Settings, payloads: list[Payload]) -> None:
    run = uuid.uuid4().hex[:8]
    keys = {f"hostile-{run}-{i}" for i in range(len(payloads))}
    producer = reliable_producer(settings.kafka_bootstrap)
    await producer.start()
    try:
        for i, (topic, payload) in enumerate(payloads):
            key = f"hostile-{run}-{i}"
            value = _dumps({**payload, "listing_id": key}) if isinstance(payload, dict) else payload
            await producer.send(getattr(settings, f"{topic}_topic"), value, key=key.encode())
        good, marker = f"after-{run}", f"marker-{run}"
        await producer.send(
            settings.listings_topic, json.dumps(good_listing(good)).encode(), key=good.encode()
        )
        await producer.send_and_wait(settings.listings_topic, b"{not json", key=marker.encode())
    finally:
        await producer.stop()
    client = EmbeddingClient.from_settings(settings)
    try:
        await eventually(
            lambda: good_stored(client, good), "the good event after the hostile ones", timeout_s=300
        )
    finally:
        await client.close()
    reader = TopicReader(settings, settings.deadletter_topic)
    try:
        await reader.find(lambda record: key_of(record) == marker, "the marker's dead letter")
        unexpected = [
            r["message"] for r in reader.records if key_of(r) in keys and r["reason"] == "processing_error"
        ]
    finally:
        await reader.close()
    assert unexpected == [], "every hostile event is refused for a named reason"


async def good_stored(client: EmbeddingClient, listing_id: str) -> bool | None:
    return True if (await client.stored_versions([listing_id]))[listing_id] == 1 else None


@ONE_RUN
@given(payloads=PAYLOADS)
def test_hostile_events_never_stall_the_worker(settings: Settings, payloads: list[Payload]) -> None:
    asyncio.run(stream_hostile(settings, payloads))
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.worker_web_port}/health", timeout=5) as health:
        assert json.loads(health.read())["status"] == "ready"
