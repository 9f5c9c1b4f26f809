"""Every modality through the real stack: photos, video, Chinese text and reviews, fused by the served model."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from tritonclient.grpc.aio import InferenceServerClient

from stream.catalog.generate import CatalogSummary
from stream.config import Settings
from stream.features.vectors import cosine, l2_normalize
from stream.media.images import preprocess_image
from stream.producer import read_jsonl
from stream.store.client import EmbeddingClient
from tests.integration.conftest import TopicReader, eventually, send
from tests.integration.test_listing_flow import stored

pytestmark = pytest.mark.usefixtures("running_worker")


def catalog_listing(catalog: CatalogSummary, want: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """A catalog listing event matching ``want``, under a fresh listing id so each test owns its listing."""
    event = next(event for event in read_jsonl(catalog.listings_path) if want(event))
    fresh = f"mm-{uuid.uuid4().hex[:10]}"
    return {**event, "listing_id": fresh, "event_id": uuid.uuid4().hex, "source_listing": event["listing_id"]}


def without_source(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "source_listing"}


async def image_vectors(settings: Settings, catalog: CatalogSummary, uris: list[str]) -> np.ndarray:
    """The served image_encoder applied directly to the same photos, read from disk."""
    from tritonclient.grpc import InferInput, InferRequestedOutput

    pixels = np.stack(
        [
            preprocess_image(
                (catalog.media_dir / uri.removeprefix(settings.media_base_url + "/")).read_bytes()
            )
            for uri in uris
        ]
    )
    client = InferenceServerClient(settings.triton_grpc_url)
    tensor = InferInput("IMAGE", list(pixels.shape), "UINT8")
    tensor.set_data_from_numpy(pixels)
    result = await client.infer("image_encoder", [tensor], outputs=[InferRequestedOutput("IMAGE_EMBEDDING")])
    await client.close()
    return np.asarray(result.as_numpy("IMAGE_EMBEDDING"))


async def test_photos_and_video_are_fetched_encoded_pooled_and_fused(
    settings: Settings, catalog: CatalogSummary, producer: AIOKafkaProducer, client: EmbeddingClient
) -> None:
    event = catalog_listing(catalog, lambda e: len(e.get("images", ())) >= 2 and e.get("videos"))
    await send(producer, settings.listings_topic, without_source(event), event["listing_id"])

    record = await stored(client, event["listing_id"], event["version"])

    assert record.modalities == ["text", "image", "video"]
    assert {"fused", "text", "text_multilingual", "image", "photos", "video"} <= set(record.vectors)
    uris = [image["uri"] for image in event["images"]][:4]
    direct = await image_vectors(settings, catalog, uris)
    assert record.vectors["photos"].shape == direct.shape
    for served, reference in zip(record.vectors["photos"], direct, strict=True):
        assert cosine(served, reference) >= 0.999
    np.testing.assert_allclose(record.vectors["image"], l2_normalize(direct.mean(axis=0)), atol=1e-4)
    assert record.vectors["fused"].shape == (256,)
    assert np.linalg.norm(record.vectors["fused"]) == pytest.approx(1.0, abs=1e-4)


async def test_a_listing_with_unreachable_media_is_embedded_from_the_rest_and_says_so(
    settings: Settings, catalog: CatalogSummary, producer: AIOKafkaProducer, client: EmbeddingClient
) -> None:
    event = catalog_listing(catalog, lambda e: bool(e.get("images")))
    event["images"] = [{"uri": f"{settings.media_base_url}/images/no-such-photo.png"}, *event["images"][:1]]
    event["videos"] = [{"uri": "http://127.0.0.1:9/unreachable.mp4"}]
    await send(producer, settings.listings_topic, without_source(event), event["listing_id"])

    record = await stored(client, event["listing_id"], event["version"])

    assert record.modalities == ["text", "image"]
    assert record.vectors["photos"].shape == (1, 1280)
    reasons = {problem["uri"]: problem["reason"] for problem in record.metadata["media_problems"]}
    assert reasons[f"{settings.media_base_url}/images/no-such-photo.png"] == "http_status"
    assert "http://127.0.0.1:9/unreachable.mp4" in reasons


async def test_reviews_update_the_listing_embedding_and_deleting_them_restores_it(
    settings: Settings,
    catalog: CatalogSummary,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    topic_reader: Callable[[str], TopicReader],
) -> None:
    event = catalog_listing(catalog, lambda e: True)
    listing_id = event["listing_id"]
    await send(producer, settings.listings_topic, without_source(event), listing_id)
    before = await stored(client, listing_id, event["version"])
    reviews = [
        {
            "event_id": uuid.uuid4().hex,
            "type": "review.posted",
            "review_id": f"{listing_id}-r{i}",
            "listing_id": listing_id,
            "occurred_at": "2026-11-01T10:00:00Z",
            "rating": 5,
            "text": text,
            "helpful_votes": i,
        }
        for i, text in enumerate(["Sturdy and bright, my son loves it.", "孩子非常喜欢，质量很好。"])
    ]
    for review in reviews:
        await send(producer, settings.reviews_topic, review, listing_id)

    async def reviewed() -> Any:
        record = await client.get(listing_id)
        return record if "reviews" in record.modalities else None

    after = await eventually(reviewed, "the reviews to be fused into the listing")
    assert after.version == before.version
    assert after.vectors["reviews"].shape == (512,)
    assert cosine(after.vectors["fused"], before.vectors["fused"]) < 0.9999
    announced = await topic_reader(settings.embeddings_topic).find(
        lambda r: r["listing_id"] == listing_id and "reviews" in r["modalities"], "the re-fusion event"
    )
    assert announced[0]["version"] == before.version

    for review in reviews:
        deletion = {key: review[key] for key in ("type", "review_id", "listing_id", "occurred_at")}
        await send(
            producer,
            settings.reviews_topic,
            {**deletion, "event_id": uuid.uuid4().hex, "type": "review.deleted"},
            listing_id,
        )

    async def unreviewed() -> Any:
        record = await client.get(listing_id)
        return record if "reviews" not in record.modalities else None

    restored = await eventually(unreviewed, "the deleted reviews to leave the listing")
    assert cosine(restored.vectors["fused"], before.vectors["fused"]) >= 0.999


async def test_a_chinese_listing_gets_a_multilingual_text_vector_close_to_its_english_twin(
    settings: Settings, catalog: CatalogSummary, producer: AIOKafkaProducer, client: EmbeddingClient
) -> None:
    products = json.loads(catalog.products_path.read_text())
    chinese = catalog_listing(catalog, lambda e: e.get("locale") == "zh-CN")
    family = products[chinese["source_listing"]]
    english = catalog_listing(
        catalog, lambda e: products[e["listing_id"]] == family and e.get("locale") != "zh-CN"
    )
    # Another kind altogether: a near-identical sibling product would read almost the same.
    other = catalog_listing(
        catalog,
        lambda e: e.get("locale") != "zh-CN" and e["categories"][-1] != english["categories"][-1],
    )
    for event in (chinese, english, other):
        await send(producer, settings.listings_topic, without_source(event), event["listing_id"])
    records = {
        name: await stored(client, e["listing_id"], e["version"])
        for name, e in (("zh", chinese), ("en", english), ("other", other))
    }

    twin = cosine(records["zh"].vectors["text_multilingual"], records["en"].vectors["text_multilingual"])
    stranger = cosine(
        records["zh"].vectors["text_multilingual"], records["other"].vectors["text_multilingual"]
    )
    assert twin > stranger
    assert records["zh"].modalities[0] == "text"
