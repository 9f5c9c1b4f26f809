"""Faust application and agents: one agent per consumed topic, each a batched pipeline."""

import asyncio
import json
import logging
import socket
from typing import Any

import faust
from faust.types import EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from tritonclient.grpc.aio import InferenceServerClient

from stream.config import Settings
from stream.errors import TritonUnavailable
from stream.events import EventDecoder
from stream.index_schema import IndexSchema
from stream.pipeline import ListingPipeline, PipelineTopics, RawMessage, RetryPolicy
from stream.store import EmbeddingStore
from stream.triton import TritonEncoder

log = logging.getLogger(__name__)


class FaustSink:
    """Publishes JSON events through the Faust app's producer and waits for the broker's ack."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def publish(self, topic: str, key: bytes | None, value: dict[str, Any]) -> None:
        """Send one event and wait until Kafka has it."""
        pending = await self._app.topic(topic, key_serializer="raw", value_serializer="raw").send(
            key=key, value=json.dumps(value, ensure_ascii=False).encode("utf-8")
        )
        await pending


def raw_message(event: EventT) -> RawMessage:
    """The bytes and position of a consumed Faust event."""
    message = event.message
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        key=message.key,
        value=message.value,
    )


async def build_listing_pipeline(app: faust.App, settings: Settings) -> ListingPipeline:
    """Connect to Triton and Redis and assemble the listing pipeline (called once the worker starts)."""
    schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
    encoder = TritonEncoder(
        InferenceServerClient(settings.triton_grpc_url),
        settings.text_model,
        schema.vectors["text"].dims,
        settings.triton_timeout_s,
    )
    return ListingPipeline(
        decoder=EventDecoder(settings.schemas_dir),
        encoder=encoder,
        store=EmbeddingStore(Redis.from_url(settings.redis_url), schema),
        sink=FaustSink(app),
        topics=PipelineTopics(embeddings=settings.embeddings_topic, deadletter=settings.deadletter_topic),
        model_version=await encoder.model_version(),
        worker=f"{settings.app_id}@{socket.gethostname()}",
    )


async def connect_listing_pipeline(app: faust.App, settings: Settings) -> ListingPipeline:
    """Build the pipeline, waiting for Triton's model to be ready (the worker may start first)."""
    retry, attempt = RetryPolicy(), 0
    while True:
        try:
            return await build_listing_pipeline(app, settings)
        except TritonUnavailable as exc:
            attempt += 1
            log.warning("waiting for Triton (attempt %d): %s", attempt, exc)
            await asyncio.sleep(retry.delay(attempt))


def create_app(settings: Settings) -> faust.App:
    """Build the Faust app with its agents and its ``/metrics`` page.

    Offsets are committed only for events whose embedding is stored (or dead-lettered), so a crash
    replays the uncommitted tail, and the version guard in Redis makes that replay harmless.
    """
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_host="127.0.0.1",
        web_port=settings.worker_web_port,
        web_in_thread=False,
    )
    listings = app.topic(settings.listings_topic, key_serializer="raw", value_serializer="raw")

    @app.agent(listings, name="listing_events")
    async def listing_events(stream: StreamT[bytes]) -> None:
        pipeline = await connect_listing_pipeline(app, settings)
        log.info("listing pipeline ready (model %s)", pipeline.model_version)
        async for events in stream.noack_take(settings.batch_size, within=settings.batch_window_s):
            await pipeline.process([raw_message(event) for event in events])
            for event in events:
                await stream.ack(event)

    @app.page("/metrics")
    async def prometheus_metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    return app
