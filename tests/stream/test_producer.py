"""Tests for stream/producer.py's sending loop with a fake producer: order, keys, acks and the progress bar."""

import asyncio
import json
from typing import Any

import pytest

from stream.producer import produce


class FakeProducer:
    """Records each send and acknowledges it at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> "asyncio.Future[None]":
        self.sent.append((topic, json.loads(value), key))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ack.set_result(None)
        return ack


ROUTED = [({"listing_id": f"toy-{i}", "n": i}, "toys.listings.v1") for i in range(3)]


async def test_produce_sends_in_order_keyed_by_listing() -> None:
    fake = FakeProducer()

    assert await produce(fake, ROUTED) == 3  # type: ignore[arg-type]

    assert [(topic, event["n"], key) for topic, event, key in fake.sent] == [
        ("toys.listings.v1", 0, b"toy-0"),
        ("toys.listings.v1", 1, b"toy-1"),
        ("toys.listings.v1", 2, b"toy-2"),
    ]


@pytest.mark.parametrize(("progress", "shown"), [(True, True), (False, False)])
async def test_progress_bar_counts_events_on_stderr_only(
    capsys: pytest.CaptureFixture[str], progress: bool, shown: bool
) -> None:
    await produce(FakeProducer(), ROUTED, progress=progress)  # type: ignore[arg-type]

    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("producing" in captured.err and "3/3" in captured.err) is shown
