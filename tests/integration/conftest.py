"""The real local stack (Kafka, Redis, Triton) and a real worker process, shared by the integration tests.

The tests run their own stack under ``.toyfuse-test`` on ports of their own, so a stack started by
``toyfuse demo`` is never disturbed; what the tests start, they stop.
"""

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream import stack
from stream.catalog.generate import CatalogSummary, generate_catalog
from stream.config import REPO_ROOT, Settings
from stream.producer import reliable_producer
from stream.stack import media_server, triton_server, worker_process
from stream.store.client import EmbeddingClient

T = TypeVar("T")
WAIT_S = 90.0

# Several checkouts (or sessions) on one machine each take their own ports and folder with this offset.
PORT_OFFSET = int(os.environ.get("TOYFUSE_TEST_PORT_OFFSET", "0"))
TEST_SETTINGS = Settings(
    run_dir=REPO_ROOT / (f".toyfuse-test-{PORT_OFFSET}" if PORT_OFFSET else ".toyfuse-test"),
    kafka_port=29092 + PORT_OFFSET,
    kafka_controller_port=29093 + PORT_OFFSET,
    redis_port=26379 + PORT_OFFSET,
    triton_http_port=28000 + PORT_OFFSET,
    triton_grpc_port=28001 + PORT_OFFSET,
    triton_metrics_port=28002 + PORT_OFFSET,
    worker_web_port=26066 + PORT_OFFSET,
    prometheus_port=29090 + PORT_OFFSET,
    media_port=28080 + PORT_OFFSET,
    app_id="toyfuse-integration",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """The integration stack, brought up for the session; stopped afterwards if this session started it."""
    already_up = all(server.healthy for server in stack.status(TEST_SETTINGS))
    stack.up(TEST_SETTINGS)
    yield TEST_SETTINGS
    if not already_up:
        stack.down(TEST_SETTINGS)


@pytest.fixture(scope="session")
def running_worker(settings: Settings) -> Iterator[Settings]:
    """A real ``toyfuse worker`` process consuming the integration topics."""
    worker_process.stop(settings)
    worker_process.start(settings, print)
    yield settings
    worker_process.stop(settings)


@pytest.fixture(scope="session")
def catalog(settings: Settings) -> Iterator[CatalogSummary]:
    """A small generated catalog whose media the stack's media server serves over HTTP."""
    summary = generate_catalog(
        settings.run_dir / "catalog",
        seed=11,
        families=8,
        listings=20,
        reviews=40,
        media_base_url=settings.media_base_url,
    )
    media_server.stop(settings)
    media_server.start(settings, print)
    yield summary
    media_server.stop(settings)


@contextmanager
def frozen_triton(settings: Settings) -> Iterator[None]:
    """The stack's Triton stopped with SIGSTOP for the block (its connections stay open, it answers
    nothing); SIGCONT on the way out, whatever happens."""
    pid = triton_server.FILES.running_pid(settings)
    assert pid is not None, "the stack's Triton runs"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    kafka_producer = reliable_producer(settings.kafka_bootstrap)
    await kafka_producer.start()
    yield kafka_producer
    await kafka_producer.stop()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[EmbeddingClient]:
    lookup = EmbeddingClient.from_settings(settings)
    yield lookup
    await lookup.close()


async def send(producer: AIOKafkaProducer, topic: str, value: bytes | dict[str, Any], key: str) -> None:
    """Produce one record and wait for the broker's ack."""
    payload = value if isinstance(value, bytes) else json.dumps(value).encode()
    await producer.send_and_wait(topic, payload, key=key.encode())


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = WAIT_S) -> T:
    """Poll ``probe`` until it returns something other than None; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await probe()
        if result is not None:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"gave up after {timeout_s:g} s waiting for {what}")


@pytest.fixture
async def topic_reader(settings: Settings) -> AsyncIterator[Callable[[str], "TopicReader"]]:
    """Factory of readers that collect JSON records from a topic, from its beginning."""
    readers: list[TopicReader] = []

    def open_reader(topic: str) -> TopicReader:
        reader = TopicReader(settings, topic)
        readers.append(reader)
        return reader

    yield open_reader
    for reader in readers:
        await reader.close()


class TopicReader:
    """Reads a topic from the beginning with its own consumer group."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"test-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
        )
        self._started = False
        self.records: list[dict[str, Any]] = []

    async def find(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> list[dict[str, Any]]:
        """Wait until at least one record matches; return all matches so far."""
        if not self._started:
            await self._consumer.start()
            self._started = True

        async def matches() -> list[dict[str, Any]] | None:
            batches = await self._consumer.getmany(timeout_ms=200)
            self.records += [json.loads(m.value) for batch in batches.values() for m in batch]
            return [r for r in self.records if predicate(r)] or None

        return await eventually(matches, what)

    async def close(self) -> None:
        if self._started:
            await self._consumer.stop()
