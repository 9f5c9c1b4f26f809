"""Faust application and agents: one agent per consumed topic, each a batched pipeline."""

import asyncio
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import faust
from faust.types import EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from tritonclient.grpc.aio import InferenceServerClient

from stream import metrics
from stream.config import Settings
from stream.contracts.events import EventDecoder
from stream.contracts.index import IndexSchema
from stream.contracts.shapes import MAX_BATCH
from stream.errors import SettingsError
from stream.inference.listing import FUSION_MODEL, LISTING_MODEL, ListingEncoder
from stream.inference.repair import check_models
from stream.inference.triton import TritonEncoder
from stream.media.fetch import MediaFetcher
from stream.media.guard import HostPolicy, media_session
from stream.retry import RetryPolicy
from stream.store.encoder_cache import EncoderCache
from stream.store.listings import EmbeddingStore
from stream.store.review_layout import check_review_layout
from stream.store.reviews import ReviewStore
from stream.store.versions import fusion_version_of
from stream.worker.batch import describe
from stream.worker.delivery import Delivery, PipelineTopics, RawMessage
from stream.worker.health import health_report
from stream.worker.lag import LagProbe
from stream.worker.listings import ListingPipeline
from stream.worker.locks import ListingLocks
from stream.worker.reembed import CACHED_VECTORS, Reembedder
from stream.worker.refusion import Refuser
from stream.worker.reviews import ReviewPipeline
from stream.worker.series import declare_worker_series
from stream.worker.served import model_labels

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


def raw_message(event: EventT[Any]) -> RawMessage:
    """The bytes and position of a consumed Faust event."""
    message = event.message
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        key=message.key,
        value=message.value or b"",  # a null value (tombstone) is dead-lettered as invalid JSON
    )


@dataclass(frozen=True)
class Pipelines:
    """The worker's two pipelines, sharing clients, locks and the serving model version."""

    listings: ListingPipeline
    reviews: ReviewPipeline
    triton: InferenceServerClient
    redis: Redis
    http: aiohttp.ClientSession

    async def close(self) -> None:
        """Close the Triton, Redis and media HTTP clients."""
        await self.http.close()
        await self.redis.aclose()
        await self.triton.close()


async def build_pipelines(app: faust.App, settings: Settings) -> Pipelines:
    """Connect to Triton, Redis and the media hosts and assemble both pipelines.

    Every client retries under the settings' retry policy until its server answers, so this waits
    for Triton's models to be ready instead of failing.
    """
    schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
    retry = RetryPolicy.from_settings(settings)
    triton = InferenceServerClient(settings.triton_grpc_url)
    redis = Redis.from_url(settings.redis_url)
    encoder = ListingEncoder(triton, schema, settings.triton_timeout_s, retry)
    model_version, encoders = await encoder.model_version(), await encoder.encoder_versions()
    metrics.model.info(model_labels(model_version, encoders))
    log.info("pipelines ready (model %s)", model_version)
    delivery = Delivery(
        FaustSink(app),
        PipelineTopics(embeddings=settings.embeddings_topic, deadletter=settings.deadletter_topic),
        f"{settings.app_id}@{socket.gethostname()}",
    )
    decoder, locks = EventDecoder(settings.schemas_dir), ListingLocks()
    store, reviews = EmbeddingStore(redis, schema, retry), ReviewStore(redis, schema, retry)
    await store.check_vector_sets()  # before any write: a set built otherwise would refuse them all
    await check_review_layout(
        redis, schema
    )  # and reviews stored under the single-server layout would be lost
    review_model = schema.vectors["reviews"].model or "text_multilingual_encoder"
    declare_worker_series(
        (settings.listings_topic, settings.reviews_topic),
        settings.listings_topic,
        {LISTING_MODEL, FUSION_MODEL, review_model, *encoders},
        CACHED_VECTORS,
    )
    review_encoder = TritonEncoder(
        triton, review_model, schema.vectors["reviews"].dims, settings.triton_timeout_s, retry
    )
    refuser = Refuser(
        encoder=encoder,
        store=store,
        reviews=reviews,
        delivery=delivery,
        locks=locks,
        served_fusion=fusion_version_of(model_version),
    )
    http = media_session(HostPolicy.from_settings(settings))  # every media connection checked
    embedder = Reembedder(
        encoder=encoder,
        media=MediaFetcher.from_settings(http, settings),
        cache=EncoderCache(redis, schema, retry),
        model_version=model_version,
        encoders=encoders,
    )
    return Pipelines(
        listings=ListingPipeline(
            decoder=decoder,
            embedder=embedder,
            reviews=reviews,
            store=store,
            delivery=delivery,
            model_version=model_version,
            locks=locks,
        ),
        reviews=ReviewPipeline(
            decoder=decoder, encoder=review_encoder, store=reviews, delivery=delivery, refuse=refuser.refuse
        ),
        triton=triton,
        redis=redis,
        http=http,
    )


class SharedPipelines:
    """The pipelines, built once on first use by either agent and closed when the worker stops."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._guard = asyncio.Lock()
        self.built: Pipelines | None = None

    async def get(self) -> Pipelines:
        """The pipelines, connecting them first if no agent has yet."""
        async with self._guard:
            if self.built is None:
                self.built = await build_pipelines(self._app, self._settings)
            return self.built

    async def close(self) -> None:
        """Close the pipelines' clients, if they were built."""
        if self.built is not None:
            await self.built.close()


Process = Callable[[list[RawMessage]], Awaitable[None]]


async def consume_in_batches(stream: StreamT[bytes], process: Process, settings: Settings) -> None:
    """Feed batches to ``process``; ack each batch only after it is fully handled (never on a crash)."""
    batches = cast(faust.Stream[bytes], stream).noack_take(
        settings.batch_size, within=settings.batch_window_s
    )
    async for batch in batches:
        events = cast(list[EventT[Any]], batch)  # noack_take yields the events themselves, to ack by hand
        raws = [raw_message(event) for event in events]
        with metrics.batches_in_flight.labels(raws[0].topic).track_inprogress():
            await process(raws)
        for event in events:
            await stream.ack(event)


STOP_AFTER_AGENT_DIED_S = 20.0  # SIGTERM's grace before a worker whose agent died exits without Faust


def stop_this_process() -> None:
    """SIGTERM this process, and exit it with code 1 if it still runs ``STOP_AFTER_AGENT_DIED_S`` later.

    Faust's shutdown waits for every event it delivered to be acked, and an agent that died mid-batch never
    acks its batch (its offsets stay uncommitted, for the next worker to replay), so without the deadline
    the worker would wait for it forever.
    """
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = threading.Timer(STOP_AFTER_AGENT_DIED_S, os._exit, args=(1,))
    deadline.daemon = True
    deadline.start()


class AgentFailures:
    """Agents that died. Faust would restart such an agent without it ever consuming again, so the
    worker reports itself failed on ``/health`` and stops, to exit non-zero for a supervisor to restart it."""

    def __init__(self, on_failure: Callable[[], None] = stop_this_process) -> None:
        self.failed: dict[str, str] = {}
        self._on_failure = on_failure

    async def guard(self, name: str, body: Awaitable[None]) -> None:
        """Await an agent's body (``toyfuse_agent_up`` is 1 meanwhile); if it raises, record the failure and
        stop the worker."""
        metrics.agent_up.labels(name).set(1)
        try:
            await body
        except Exception as exc:
            self.failed[name] = describe(exc)
            log.critical(
                "agent %s died (%s); stopping the worker so that it is restarted", name, self.failed[name]
            )
            self._on_failure()
            raise
        finally:
            metrics.agent_up.labels(name).set(0)


def create_app(settings: Settings, failures: AgentFailures | None = None) -> faust.App:
    """Build the Faust app with its agents, its ``/metrics`` page and its ``/health`` page.

    Offsets are committed only for events whose embedding is stored (or dead-lettered), so a crash
    replays the uncommitted tail, and the version guard in Redis makes that replay harmless.
    Listings and reviews share the partition count and key, so Faust assigns a listing's two
    partitions to the same worker, where per-listing locks keep upserts and re-fusions apart.

    Raises:
        SettingsError: ``batch_size`` is larger than the models' batch cap.
    """
    if settings.batch_size > MAX_BATCH:
        raise SettingsError(
            f"TOYFUSE_BATCH_SIZE={settings.batch_size} exceeds the models' batch cap of {MAX_BATCH} "
            "(batching.max_batch in schemas/embedding_index.yaml); lower it"
        )
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_s,
        web_host="127.0.0.1",
        web_port=settings.worker_web_port,
        web_in_thread=False,
    )
    pipelines = SharedPipelines(app, settings)
    failures = failures or AgentFailures()
    lag_probe = LagProbe.from_settings(settings)
    listings = app.topic(settings.listings_topic, key_serializer="raw", value_serializer="raw")
    reviews = app.topic(settings.reviews_topic, key_serializer="raw", value_serializer="raw")

    async def consume(stream: StreamT[bytes], process: Callable[[Pipelines], Process]) -> None:
        await consume_in_batches(stream, process(await pipelines.get()), settings)

    # Several batches in flight: per-listing locks keep one listing's batches apart, the guards in Redis
    # make their order irrelevant (listing versions; for reviews, tombstones and occurred_at), and Faust
    # commits an offset only once every earlier one is acknowledged, so a crash still replays whatever was
    # not stored.
    @app.agent(listings, name="listing_events", concurrency=settings.listing_batches_in_flight)
    async def listing_events(stream: StreamT[bytes]) -> None:
        await failures.guard("listing_events", consume(stream, lambda p: p.listings.process))

    @app.agent(reviews, name="review_events", concurrency=settings.review_batches_in_flight)
    async def review_events(stream: StreamT[bytes]) -> None:
        await failures.guard("review_events", consume(stream, lambda p: p.reviews.process))

    for name in app.agents:
        metrics.agent_up.labels(name).set(0)  # until it starts

    # A timer of its own, with Kafka clients of its own: it keeps measuring while an agent is stuck.
    @app.timer(settings.lag_probe_interval_s)  # type: ignore[untyped-decorator]  # Faust: @no_type_check
    async def consumer_lag() -> None:
        await lag_probe.probe()

    # Beside the agents too: a batch retrying on a model whose stub died goes on once the reload lands.
    @app.timer(settings.model_check_interval_s)  # type: ignore[untyped-decorator]  # Faust: @no_type_check
    async def model_check() -> None:
        await check_models(settings.triton_http_url, settings.triton_timeout_s, settings.startup_timeout_s)

    @app.page("/metrics")
    async def prometheus_metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        model_version = pipelines.built.listings.model_version if pipelines.built is not None else None
        states = {agent.name: agent.state for agent in app.agents.values()}
        status, body = health_report(model_version, {**states, **dict.fromkeys(failures.failed, "crashed")})
        return web.json(body, status=status)

    @app.on_before_shutdown.connect
    async def close_clients(sender: faust.App, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await lag_probe.close()
        await pipelines.close()

    return app


def run_worker(settings: Settings, loglevel: str = "INFO") -> None:
    """Start consuming with the app's agents until SIGTERM or Ctrl-C; exit 1 if an agent died."""
    failures = AgentFailures()
    try:
        faust.Worker(create_app(settings, failures), loglevel=loglevel).execute_from_commandline()
    except SystemExit as stopped:
        if failures.failed and not stopped.code:
            raise SystemExit(1) from stopped
        raise
