"""Change-aware upserts on the real stack: what did not change is neither fetched nor encoded (Triton's counts)."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from tritonclient.grpc.aio import InferenceServerClient

from stream.catalog.generate import CatalogSummary
from stream.config import Settings
from stream.status.probes import worker_scrape
from stream.store.client import EmbeddingClient
from tests.integration.conftest import send
from tests.integration.test_listing_flow import stored
from tests.integration.test_multimodal_flow import catalog_listing, without_source

pytestmark = pytest.mark.usefixtures("running_worker")
T = TypeVar("T")
ATTEMPTS = 5  # measurements a model-check round may overlap before the test gives up (one in ~5 does)
MODELS = (
    "listing_embedder",
    "text_encoder",
    "text_multilingual_encoder",
    "image_encoder",
    "video_pooling",
    "fusion",
)


async def inference_counts(settings: Settings) -> dict[str, int]:
    """Triton's inference count per model (items inferred; listing_embedder's inner calls included)."""
    triton = InferenceServerClient(settings.triton_grpc_url)
    try:
        stats = await triton.get_inference_statistics(as_json=True)
    finally:
        await triton.close()
    counts = dict.fromkeys(MODELS, 0)
    for model in stats["model_stats"]:
        if model["name"] in counts:
            counts[model["name"]] += int(model.get("inference_count", 0))
    return counts


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {model: after[model] - before[model] for model in MODELS if after[model] != before[model]}


async def check_rounds(settings: Settings) -> tuple[float, float]:
    """The worker's model-check rounds started and finished so far."""
    rounds = (await asyncio.to_thread(worker_scrape, settings)).by_labels(
        "toyfuse_model_check_rounds_total", "phase"
    )
    return rounds[("started",)], rounds[("finished",)]


async def models_inferred_by(
    settings: Settings, change: Callable[[int], Awaitable[T]]
) -> tuple[T, dict[str, int]]:
    """``change(attempt)``'s result and how much each model's Triton inference count grew while it ran.

    The worker's model check sends every model a canary every 15 s, which Triton counts too, so a
    measurement that a check round overlapped is dropped and the change made again: ``change`` must make a
    new change on each attempt (1, 2, ...).
    """
    for attempt in range(1, ATTEMPTS + 1):
        started, finished = await check_rounds(settings)
        before = await inference_counts(settings)
        result = await change(attempt)
        after = await inference_counts(settings)
        if started == finished == (await check_rounds(settings))[0]:
            return result, grown(before, after)
    pytest.fail(f"a model-check round overlapped each of {ATTEMPTS} upserts")


def next_version(event: dict[str, Any], step: int = 1, **changes: Any) -> dict[str, Any]:
    return {**event, "version": event["version"] + step, "event_id": uuid.uuid4().hex, **changes}


async def upsert(
    producer: AIOKafkaProducer, settings: Settings, client: EmbeddingClient, event: dict[str, Any]
) -> Any:
    await send(producer, settings.listings_topic, without_source(event), event["listing_id"])
    return await stored(client, event["listing_id"], event["version"])


@pytest.fixture
def with_media(catalog: CatalogSummary) -> dict[str, Any]:
    return catalog_listing(catalog, lambda e: bool(e.get("images")) and bool(e.get("videos")))


async def test_a_price_only_update_touches_no_model_and_keeps_every_vector(
    settings: Settings, producer: AIOKafkaProducer, client: EmbeddingClient, with_media: dict[str, Any]
) -> None:
    first = await upsert(producer, settings, client, with_media)
    price = {"amount": "1.23", "currency": "EUR"}

    second, inferred = await models_inferred_by(
        settings, lambda step: upsert(producer, settings, client, next_version(with_media, step, price=price))
    )

    assert inferred == {}
    assert second.metadata["price"] == 1.23 and second.model_version == first.model_version
    assert sorted(second.vectors) == sorted(first.vectors)
    for name, vector in first.vectors.items():
        np.testing.assert_array_equal(second.vectors[name], vector, err_msg=name)


async def test_a_new_title_re_encodes_the_text_only(
    settings: Settings, producer: AIOKafkaProducer, client: EmbeddingClient, with_media: dict[str, Any]
) -> None:
    first = await upsert(producer, settings, client, with_media)

    second, inferred = await models_inferred_by(
        settings,
        lambda step: upsert(
            producer, settings, client, next_version(with_media, step, title=f"Renamed {uuid.uuid4().hex}")
        ),
    )

    assert set(inferred) == {
        "text_encoder",
        "text_multilingual_encoder",
        "fusion",
    }
    for name in ("photos", "image", "video"):
        np.testing.assert_array_equal(second.vectors[name], first.vectors[name], err_msg=name)
    assert not np.array_equal(second.vectors["text"], first.vectors["text"])


async def test_two_listings_sharing_a_photo_encode_it_once(
    settings: Settings, catalog: CatalogSummary, producer: AIOKafkaProducer, client: EmbeddingClient
) -> None:
    first = catalog_listing(catalog, lambda e: len(e.get("images", ())) >= 1)
    first = {**first, "images": first["images"][:1], "videos": [], "title": f"First {uuid.uuid4().hex}"}
    one = await upsert(producer, settings, client, first)

    def another_listing() -> dict[str, Any]:
        return {**first, "listing_id": f"mm-{uuid.uuid4().hex[:10]}", "title": f"Second {uuid.uuid4().hex}"}

    two, inferred = await models_inferred_by(
        settings, lambda _: upsert(producer, settings, client, another_listing())
    )

    assert set(inferred) == {
        "text_encoder",
        "text_multilingual_encoder",
        "fusion",
    }
    np.testing.assert_array_equal(two.vectors["photos"], one.vectors["photos"])
    assert two.modalities == ["text", "image"]
