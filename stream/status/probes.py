"""The reads behind `toyfuse status`: the worker's health and metrics, Triton's models, the dead letters,
and whether the store's keys are laid out as the worker would write them."""

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from stream.config import Settings
from stream.contracts.events import EventDecoder
from stream.contracts.index import IndexSchema
from stream.deadletters.reader import partitions_of
from stream.deadletters.records import DeadLetter, parse_deadletter
from stream.errors import DeadLetterError, InvalidEventError, StoreError
from stream.stack.process import LOCALHOST
from stream.status.exceptions import Unreachable
from stream.status.scrape import Scrape, parse_scrape
from stream.status.summary import TopicLag, lag_by_topic
from stream.store.listings import EmbeddingStore
from stream.store.review_layout import MIGRATE_ADVICE, review_layout_problem
from stream.store.vector_sets import REBUILD_ADVICE
from stream.worker.lag import KafkaOffsets, PartitionOffsets, lag_of

HTTP_TIMEOUT_S = 2.0
DEADLETTER_READ_S = 5.0  # the newest dead letters are a quick read, or none
KAFKA_READ_S = 5.0


@dataclass(frozen=True)
class WorkerHealth:
    """The worker's ``/health`` body."""

    status: str  # ready, starting or failed
    model_version: str | None
    agents: dict[str, str]  # agent -> its state (running, crashed, ...)
    failed_agents: list[str]


@dataclass(frozen=True)
class ModelState:
    """One model of Triton's repository index."""

    name: str
    version: str | None
    ready: bool
    detail: str  # the state, and Triton's reason when it is not ready


@dataclass(frozen=True)
class DeadLetterTail:
    """How many records the dead-letter topic holds, and the newest of its partitions' last ones."""

    records: int
    newest: DeadLetter | None


def worker_url(settings: Settings, page: str) -> str:
    """A page of the worker's web server, e.g. ``/health``."""
    return f"http://{LOCALHOST}:{settings.worker_web_port}{page}"


def http_read(url: str, method: str = "GET", accept_error: bool = False) -> bytes:
    """The body of ``url``; with ``accept_error``, also of an HTTP error answer (``/health`` sends 503).

    Raises:
        Unreachable: nothing answered within ``HTTP_TIMEOUT_S``, or an error status came back.
    """
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        if accept_error:
            return bytes(exc.read())
        raise Unreachable(f"{url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"nothing answers at {url} ({getattr(exc, 'reason', exc)})") from exc


def _json(url: str, method: str = "GET", accept_error: bool = False) -> Any:
    try:
        return json.loads(http_read(url, method, accept_error))
    except ValueError as exc:
        raise Unreachable(f"{url} answered something that is not JSON ({exc})") from exc


def worker_health(settings: Settings) -> WorkerHealth:
    """The worker's own account of itself.

    Raises:
        Unreachable: the worker is not running on ``worker_web_port``.
    """
    body = _json(worker_url(settings, "/health"), accept_error=True)
    try:
        return WorkerHealth(
            body["status"], body["model_version"], dict(body["agents"]), list(body["failed_agents"])
        )
    except (KeyError, TypeError) as exc:
        raise Unreachable(
            f"the worker's /health lacks {exc}; is port {settings.worker_web_port} toyfuse's?"
        ) from exc


def worker_scrape(settings: Settings) -> Scrape:
    """One read of the worker's ``/metrics``.

    Raises:
        Unreachable: the worker does not answer, or its page is not in the Prometheus text format.
    """
    url = worker_url(settings, "/metrics")
    text = http_read(url).decode("utf-8", errors="replace")
    try:
        return parse_scrape(text, time.monotonic())
    except ValueError as exc:
        raise Unreachable(f"{url} is not a Prometheus page ({exc})") from exc


def triton_models(settings: Settings) -> list[ModelState]:
    """Every model of Triton's repository index, and whether it is ready.

    Raises:
        Unreachable: Triton does not answer on ``triton_http_port``.
    """
    url = f"http://{settings.triton_host}:{settings.triton_http_port}/v2/repository/index"
    entries = _json(url, method="POST")
    if not isinstance(entries, list):
        raise Unreachable(f"{url} answered {entries!r} instead of a list of models")
    return [_model_state(entry) for entry in sorted(entries, key=lambda e: str(e.get("name")))]


def store_problems(settings: Settings) -> list[str]:
    """What a starting worker would refuse in Redis: vector sets built otherwise than the schema builds
    them, and review keys of the single-server layout (the worker's own start-up checks, reading only).

    Raises:
        Unreachable: Redis does not answer at ``redis_url``, or refused a read.
    """
    return asyncio.run(_store_problems(settings))


async def _store_problems(settings: Settings) -> list[str]:
    schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
    redis = Redis.from_url(settings.redis_url, socket_timeout=HTTP_TIMEOUT_S)
    try:
        problems = await EmbeddingStore(redis, schema).vector_set_problems()
        layout = await review_layout_problem(redis, schema)
    except StoreError as exc:
        raise Unreachable(f"Redis at {settings.redis_url} could not be read: {exc}") from exc
    finally:
        await redis.aclose()
    advice = [f"{problem}; {REBUILD_ADVICE}" for problem in problems]
    return [*advice, *([f"{layout}; {MIGRATE_ADVICE}"] if layout else [])]


def _model_state(entry: dict[str, Any]) -> ModelState:
    state = str(entry.get("state", "UNKNOWN"))
    reason = str(entry.get("reason", ""))
    detail = state.lower() + (f": {reason}" if reason and state != "READY" else "")
    return ModelState(str(entry.get("name")), entry.get("version"), state == "READY", detail)


def kafka_lag(settings: Settings) -> dict[str, TopicLag]:
    """The worker's consumer group's lag read from Kafka itself, for when the worker's metrics are missing
    (no commit age: that needs a history of commits).

    Raises:
        Unreachable: Kafka did not answer within ``KAFKA_READ_S``.
    """
    try:
        offsets = asyncio.run(asyncio.wait_for(_read_offsets(settings), KAFKA_READ_S))
    except (KafkaError, OSError, TimeoutError) as exc:
        raise Unreachable(
            f"the consumer group {settings.app_id}'s offsets could not be read: {exc!r}"
        ) from exc
    return lag_by_topic({(tp.topic, str(tp.partition)): lag_of(o) for tp, o in offsets.items()}, {})


async def _read_offsets(settings: Settings) -> dict[TopicPartition, PartitionOffsets]:
    topics = (settings.listings_topic, settings.reviews_topic)
    source = KafkaOffsets(settings.kafka_bootstrap, settings.app_id, topics, KAFKA_READ_S)
    try:
        return await source.read()
    finally:
        await source.close()


def deadletter_tail(settings: Settings) -> DeadLetterTail:
    """Count the dead-letter topic's records and read the last one of each partition (``DEADLETTER_READ_S``
    at most).

    Raises:
        Unreachable: Kafka does not answer, or the read took too long.
    """
    try:
        return asyncio.run(asyncio.wait_for(_read_tail(settings), DEADLETTER_READ_S))
    except (DeadLetterError, KafkaError, OSError) as exc:
        raise Unreachable(f"the dead-letter topic could not be read: {exc}") from exc
    except TimeoutError as exc:
        raise Unreachable(
            f"the dead-letter topic's newest records did not arrive within {DEADLETTER_READ_S:g} s"
        ) from exc


async def _read_tail(settings: Settings) -> DeadLetterTail:
    topic = settings.deadletter_topic
    partitions = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
    if not partitions:
        return DeadLetterTail(0, None)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        begin, end = await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
        last = {tp: end[tp] - 1 for tp in partitions if end[tp] > begin[tp]}
        for tp, offset in last.items():
            consumer.seek(tp, offset)
        letters = await _last_letters(consumer, last, EventDecoder(settings.schemas_dir))
    finally:
        await consumer.stop()
    newest = max(letters, key=lambda letter: letter.failed_at, default=None)
    return DeadLetterTail(sum(end[tp] - begin[tp] for tp in partitions), newest)


async def _last_letters(
    consumer: AIOKafkaConsumer, last: dict[TopicPartition, int], decoder: EventDecoder
) -> list[DeadLetter]:
    letters, remaining = [], set(last)
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=200)
        for tp, messages in batches.items():
            for message in messages:
                try:
                    letters.append(
                        parse_deadletter(
                            decoder, tp.topic, tp.partition, message.offset, message.value or b""
                        )
                    )
                except InvalidEventError:
                    continue  # not a dead-letter record: `toyfuse dlq list` counts those
        remaining = {tp for tp in remaining if await consumer.position(tp) <= last[tp]}
    return letters
