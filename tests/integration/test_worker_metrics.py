"""The worker's operator metrics on the real stack, read from its own /metrics page as Prometheus reads it."""

import asyncio
import json
import urllib.request
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from stream.catalog.generate import CatalogSummary
from stream.config import Settings
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory
from tests.integration.conftest import eventually, frozen_triton, send
from tests.integration.test_listing_flow import stored
from tests.integration.test_multimodal_flow import catalog_listing, without_source

pytestmark = pytest.mark.usefixtures("running_worker")


class Scrape:
    """One read of the worker's /metrics page."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` whose labels include ``labels`` (0 when there is none, as for a fresh counter)."""
        found = [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else 0.0

    def by_partition(self, name: str, topic: str) -> dict[str, float]:
        """A per-partition gauge of ``topic``, by partition number."""
        return {
            s.labels["partition"]: s.value
            for s in self.samples
            if s.name == name and s.labels["topic"] == topic
        }

    def labels_of(self, name: str) -> dict[str, str]:
        (sample,) = (s for s in self.samples if s.name == name)
        return sample.labels


async def scrape(settings: Settings) -> Scrape:
    def read() -> str:
        url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as page:
            return str(page.read().decode())

    families = text_string_to_metric_families(await asyncio.to_thread(read))
    return Scrape([sample for family in families for sample in family.samples])


def topics(settings: Settings) -> tuple[str, str]:
    return settings.listings_topic, settings.reviews_topic


def every_partition(settings: Settings) -> set[str]:
    return {str(partition) for partition in range(settings.topic_partitions)}


async def caught_up(settings: Settings) -> Scrape | None:
    """A scrape in which every partition of both topics is measured and has no lag, else None."""
    page = await scrape(settings)
    for topic in topics(settings):
        lags = page.by_partition("toyfuse_consumer_lag_messages", topic)
        if set(lags) != every_partition(settings) or any(lags.values()):
            return None
    return page


async def test_a_stream_of_listings_moves_every_operator_metric(
    settings: Settings,
    catalog: CatalogSummary,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
) -> None:
    run = uuid.uuid4().hex[:8]
    before = await scrape(settings)
    text_only = listing_event_factory(listing_id=f"metrics-{run}", title=f"Metrics probe {run}")
    with_photos = catalog_listing(catalog, lambda e: bool(e.get("images")))
    with_photos = {**without_source(with_photos), "title": f"{with_photos['title']} {run}"}
    # A new title alone: the photos are reused, so the worker calls the text encoders themselves.
    retitled = {**with_photos, "event_id": uuid.uuid4().hex, "version": with_photos["version"] + 1}
    retitled["title"] = f"Retitled {run}"
    for event in (text_only, with_photos):
        await send(producer, settings.listings_topic, event, event["listing_id"])
    record = await stored(client, text_only["listing_id"], text_only["version"])
    await stored(client, with_photos["listing_id"], with_photos["version"])
    await send(producer, settings.listings_topic, retitled, retitled["listing_id"])
    await stored(client, retitled["listing_id"], retitled["version"])

    page = await eventually(lambda: caught_up(settings), "no lag on any partition once the worker caught up")

    for topic in topics(settings):
        ages = page.by_partition("toyfuse_consumer_commit_age_seconds", topic)
        assert set(ages) == every_partition(settings) and min(ages.values()) >= 0
        assert page.value("toyfuse_batches_in_flight", topic=topic) == 0
    assert page.value("toyfuse_agent_up", agent="listing_events") == 1
    assert page.value("toyfuse_agent_up", agent="review_events") == 1

    def grew(name: str, **labels: str) -> float:
        return page.value(name, **labels) - before.value(name, **labels)

    assert grew("toyfuse_triton_batch_size_items_count", model="listing_embedder") >= 1, (
        "the text-only upsert"
    )
    assert grew("toyfuse_triton_batch_size_items_count", model="text_encoder") >= 1, "the new title"
    assert grew("toyfuse_triton_batch_size_items_count", model="fusion") >= 1, "the new title, re-fused"
    assert grew("toyfuse_triton_request_seconds_count", model="text_encoder") >= 1
    assert grew("toyfuse_media_fetches_total", kind="photo", outcome="ok") >= 1
    assert grew("toyfuse_media_fetched_bytes_total", kind="photo") > 0
    assert grew("toyfuse_embedding_freshness_from_produce_seconds_count", topic=settings.listings_topic) >= 3
    assert grew("toyfuse_embedding_freshness_seconds_count", topic=settings.listings_topic) >= 3
    served = page.labels_of("toyfuse_model_info")
    assert served["model_version"] == record.model_version
    assert served["listing_model"] == "listing_embedder/1" and served["fusion"].startswith("fusion")
    assert served["text_encoder"].startswith("text_encoder/") and served["video_pooling"]
    assert "toyfuse_consumer_lag_probe_failures_total" in {s.name for s in page.samples}
    assert page.value("toyfuse_events_processed_total", topic=settings.listings_topic, outcome="applied") >= 3


def payload(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


async def stuck(settings: Settings, partition: str) -> tuple[Scrape, float] | None:
    """A scrape in which ``partition`` of the listings has lag, with its commit age; else None."""
    page = await scrape(settings)
    lag = page.by_partition("toyfuse_consumer_lag_messages", settings.listings_topic).get(partition, 0)
    age = page.by_partition("toyfuse_consumer_commit_age_seconds", settings.listings_topic).get(partition)
    return (page, age) if lag > 0 and age is not None else None


async def test_a_frozen_triton_shows_as_lag_and_an_ageing_commit_and_both_recover(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
) -> None:
    await eventually(lambda: caught_up(settings), "no lag before the test")
    run = uuid.uuid4().hex[:8]
    events = [
        listing_event_factory(listing_id=f"lag-{run}-{i}", title=f"Lag probe {run} {i}") for i in range(3)
    ]
    with frozen_triton(settings):
        sent = [
            await producer.send_and_wait(
                settings.listings_topic, payload(event), key=event["listing_id"].encode()
            )
            for event in events
        ]
        partition = str(sent[0].partition)

        page, first_age = await eventually(
            lambda: stuck(settings, partition), "lag on the frozen partition", 30
        )
        assert page.value("toyfuse_batches_in_flight", topic=settings.listings_topic) >= 1, (
            "a batch waits on Triton"
        )
        assert page.value("toyfuse_agent_up", agent="listing_events") == 1, "stuck, not dead"

        async def older() -> float | None:
            found = await stuck(settings, partition)
            return found[1] if found is not None and found[1] > first_age else None

        await eventually(older, "the frozen partition's commit to age", 30)

    for event in events:
        await stored(client, event["listing_id"], event["version"])
    page = await eventually(lambda: caught_up(settings), "no lag once Triton answers again", 60)
    assert page.value("toyfuse_batches_in_flight", topic=settings.listings_topic) == 0
