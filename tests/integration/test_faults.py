"""Faults on the real stack: a killed model process stalls the stream, dead-letters nothing, and is healed."""

import asyncio
import base64
import os
import re
import signal
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from stream import stack
from stream.config import Settings
from stream.stack import triton_server
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory
from tests.integration.conftest import TopicReader, eventually, send

pytestmark = pytest.mark.usefixtures("running_worker")
CANARY_FAILURES = re.compile(
    r'^toyfuse_model_canary_failures_total\{model="(\w+)"\} ([0-9.e+]+)$', re.MULTILINE
)


def kill_model_process(settings: Settings, model: str) -> int:
    """SIGKILL the Python-backend stub serving ``model`` in this stack's Triton; return its pid."""
    marker = f"triton_models/{model}/1/model.py"
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        command = b" ".join(args).decode(errors="replace")
        if (
            "triton_python_backend_stub" in command
            and marker in command
            and f"{settings.run_dir}/" in command
        ):
            os.kill(int(proc.name), signal.SIGKILL)
            return int(proc.name)
    raise AssertionError(f"no stub process of {model} under {settings.run_dir}")


def canary_failures(settings: Settings) -> float:
    """The worker's toyfuse_model_canary_failures_total, summed over models."""
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.worker_web_port}/metrics", timeout=5) as page:
        return sum(float(value) for _, value in CANARY_FAILURES.findall(page.read().decode()))


async def test_a_killed_model_process_stalls_the_stream_dead_letters_nothing_and_is_healed(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    topic_reader: Callable[[str], TopicReader],
    listing_event_factory: ListingEventFactory,
) -> None:
    events = [listing_event_factory(listing_id=f"fault-{uuid.uuid4().hex[:8]}-{i}") for i in range(6)]
    ids = {event["listing_id"] for event in events}
    before = canary_failures(settings)
    kill_model_process(settings, "text_encoder")
    try:
        for event in events:
            await send(producer, settings.listings_topic, event, event["listing_id"])
        await eventually(
            lambda: asyncio.to_thread(lambda: True if canary_failures(settings) > before else None),
            "the worker's canary to find the broken model",
        )
        assert set((await client.stored_versions(sorted(ids))).values()) == {None}, (
            "nothing stored while broken"
        )
        sick = triton_server.status(settings)
        assert not sick.healthy and "model text_encoder fails its canary" in sick.detail
    finally:
        await asyncio.to_thread(stack.up, settings)

    assert triton_server.status(settings).healthy, "stack up restarted Triton"

    async def all_stored() -> bool | None:
        versions = await client.stored_versions(sorted(ids))
        return True if all(version == 1 for version in versions.values()) else None

    await eventually(all_stored, "every listing stored once the model is back", timeout_s=180)
    marker = f"fault-marker-{uuid.uuid4().hex[:8]}"
    await send(producer, settings.listings_topic, b"{not json", marker)
    deadletters = topic_reader(settings.deadletter_topic)
    await deadletters.find(lambda record: key_of(record) == marker, "the marker's dead letter")
    assert [key_of(record) for record in deadletters.records if key_of(record) in ids] == []


def key_of(record: dict[str, Any]) -> str | None:
    """The original message key of a dead-letter record."""
    key = record["source"]["key_b64"]
    return None if key is None else base64.b64decode(key).decode()
