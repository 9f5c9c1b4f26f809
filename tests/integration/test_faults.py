"""Faults on the real stack: a killed model process, a SIGTERM mid-stream and a killed worker lose nothing."""

import asyncio
import base64
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.stack import triton_server, worker_process
from stream.stack.process import pid_alive
from stream.status.probes import worker_scrape
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory, free_port
from tests.integration.conftest import TopicReader, eventually, send

pytestmark = pytest.mark.usefixtures("running_worker")


def kill_model_process(settings: Settings, model: str) -> list[int]:
    """SIGKILL every Python-backend stub serving ``model`` in this stack's Triton (one per instance); return
    their pids."""
    marker, killed = f"triton_models/{model}/1/model.py", []
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
            killed.append(int(proc.name))
    assert killed, f"no stub process of {model} under {settings.run_dir}"
    return killed


def worker_counts(settings: Settings) -> tuple[float, dict[tuple[str, ...], float]]:
    """The worker's toyfuse_model_canary_failures_total (summed over models) and toyfuse_model_reloads_total
    (by model and outcome)."""
    scrape = worker_scrape(settings)
    canaries = sum(scrape.sum_by("toyfuse_model_canary_failures_total", "model").values())
    return canaries, scrape.by_labels("toyfuse_model_reloads_total", "model", "outcome")


async def test_a_killed_model_process_is_reloaded_by_the_worker_and_nothing_is_lost_or_dead_lettered(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    topic_reader: Callable[[str], TopicReader],
    listing_event_factory: ListingEventFactory,
) -> None:
    run = uuid.uuid4().hex[:8]
    # Texts never seen before: a text the shared encoder cache holds would need no text_encoder.
    events = [
        listing_event_factory(listing_id=f"fault-{run}-{i}", title=f"Fault probe {run} {i}") for i in range(6)
    ]
    ids = {event["listing_id"] for event in events}
    canaries_before, reloads_before = worker_counts(settings)
    triton_pid = triton_server.FILES.running_pid(settings)
    kill_model_process(settings, "text_encoder")
    for event in events:
        await send(producer, settings.listings_topic, event, event["listing_id"])

    await eventually(
        lambda: asyncio.to_thread(lambda: True if worker_counts(settings)[0] > canaries_before else None),
        "the worker's canary to find the broken model",
    )
    await eventually(lambda: all_stored(client, ids), "every listing stored once the model is reloaded", 180)

    reloads = {key: count - reloads_before.get(key, 0.0) for key, count in worker_counts(settings)[1].items()}
    assert {key: count for key, count in reloads.items() if count} == {("text_encoder", "recovered"): 1.0}, (
        "the dead encoder reloaded once; listing_embedder, which only called it, left alone"
    )
    assert triton_server.FILES.running_pid(settings) == triton_pid, "Triton itself was not restarted"
    assert triton_server.status(settings).healthy
    marker = f"fault-marker-{uuid.uuid4().hex[:8]}"
    await send(producer, settings.listings_topic, b"{not json", marker)
    deadletters = topic_reader(settings.deadletter_topic)
    await deadletters.find(lambda record: key_of(record) == marker, "the marker's dead letter")
    assert [key_of(record) for record in deadletters.records if key_of(record) in ids] == []


def key_of(record: dict[str, Any]) -> str | None:
    """The original message key of a dead-letter record."""
    key = record["source"]["key_b64"]
    return None if key is None else base64.b64decode(key).decode()


@pytest.fixture
def second_worker(settings: Settings) -> Iterator[Settings]:
    """Another ``toyfuse worker`` process in the same consumer group, with its own folder and web port."""
    other = settings.model_copy(
        update={"run_dir": settings.run_dir / "second", "worker_web_port": free_port()}
    )
    worker_process.start(other, print)
    yield other
    worker_process.stop(other)


def signal_worker(settings: Settings, signum: signal.Signals) -> int:
    pid = worker_process.FILES.running_pid(settings)
    assert pid is not None, "the second worker is running"
    os.kill(pid, signum)
    return pid


async def all_stored(client: EmbeddingClient, ids: set[str]) -> bool | None:
    versions = await client.stored_versions(sorted(ids))
    return True if all(version == 1 for version in versions.values()) else None


async def test_sigterm_mid_stream_exits_promptly_and_a_killed_worker_hands_over_fast(
    settings: Settings,
    second_worker: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
) -> None:
    await asyncio.sleep(settings.kafka_session_timeout_s)  # both workers share the partitions now
    first = [listing_event_factory(listing_id=f"term-{uuid.uuid4().hex[:8]}-{i}") for i in range(24)]
    for event in first:
        await send(producer, settings.listings_topic, event, event["listing_id"])
    pid, started = signal_worker(second_worker, signal.SIGTERM), time.monotonic()
    await eventually(
        lambda: asyncio.to_thread(lambda: None if pid_alive(pid) else True), "SIGTERM to end it", 30
    )
    stopped_s = time.monotonic() - started
    await eventually(lambda: all_stored(client, {e["listing_id"] for e in first}), "the first batch stored")

    worker_process.start(second_worker, print)
    await asyncio.sleep(settings.kafka_session_timeout_s)
    signal_worker(second_worker, signal.SIGKILL)
    killed = time.monotonic()
    later = [listing_event_factory(listing_id=f"kill-{uuid.uuid4().hex[:8]}-{i}") for i in range(8)]
    for event in later:
        await send(producer, settings.listings_topic, event, event["listing_id"])
    await eventually(
        lambda: all_stored(client, {e["listing_id"] for e in later}), "the killed worker's share", 45
    )
    handover_s = time.monotonic() - killed
    print(
        f"SIGTERM mid-stream: exited in {stopped_s:.1f} s; SIGKILL: every listing stored {handover_s:.1f} s later"
    )
    assert stopped_s <= 10.0, "SIGTERM finishes or hands back the batch and exits within 10 s"
