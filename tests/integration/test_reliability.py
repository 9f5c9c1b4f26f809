"""Reliability on the real stack: kill -9 of the worker mid-stream, Triton down 20 s, Redis restarted, and
kill -9 of the fusion model's processes (which the worker reloads; nobody restarts anything).

Each scenario streams an event log (updates, deletes, duplicates, out-of-order versions, reviews),
hits the stack with its fault while the worker is busy, and compares the final state in Redis with
the state computed from the log alone. Every row of the reliability report is printed and written
to ``<run dir>/reliability.json``.
"""

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.stack import redis_server, triton_server, worker_process
from tests.integration.conftest import TopicReader, eventually, send
from tests.integration.reliability import EventLog, Outcome, compare, event_log
from tests.integration.test_faults import key_of, kill_model_process

pytestmark = pytest.mark.usefixtures("running_worker")
Fault = Callable[[Settings], Awaitable[None]]


async def produce_all(producer: AIOKafkaProducer, settings: Settings, log: EventLog) -> None:
    """Produce the log as fast as the broker takes it, listings and reviews interleaved."""
    sent = [
        await producer.send(topic, json.dumps(event).encode(), key=event["listing_id"].encode())
        for topic, events in ((settings.listings_topic, log.listings), (settings.reviews_topic, log.reviews))
        for event in events
    ]
    await asyncio.gather(*sent)


async def kill_worker(settings: Settings) -> None:
    pid = worker_process.FILES.running_pid(settings)
    assert pid is not None, "the worker runs"
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(2)
    await asyncio.to_thread(worker_process.start, settings, print)


async def triton_down_20_s(settings: Settings) -> None:
    await asyncio.to_thread(triton_server.stop, settings)
    await asyncio.sleep(20)
    await asyncio.to_thread(triton_server.start, settings, print)


async def restart_redis(settings: Settings) -> None:
    await asyncio.to_thread(redis_server.stop, settings)
    await asyncio.sleep(3)
    await asyncio.to_thread(redis_server.start, settings, print)


async def kill_fusion_stubs(settings: Settings) -> None:
    kill_model_process(settings, "fusion")


async def wrongly_deadlettered(
    settings: Settings, producer: AIOKafkaProducer, reader: TopicReader, log: EventLog
) -> int:
    """Dead letters of the log's (all valid) events, read up to a marker produced after everything else."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    await send(producer, settings.listings_topic, b"{not json", marker)
    await reader.find(lambda record: key_of(record) == marker, "the marker's dead letter")
    return sum(1 for record in reader.records if key_of(record) in log.final_version)


async def settled(
    settings: Settings, log: EventLog, patience_s: float = 90.0, limit_s: float = 900.0
) -> Outcome:
    """The outcome once every listing is in its final state, or once nothing has changed for ``patience_s``."""
    deadline, last, changed = time.monotonic() + limit_s, None, time.monotonic()
    while time.monotonic() < deadline:
        outcome = await compare(settings, log)
        if outcome.done == len(log.final_version):
            return outcome
        if outcome != last:
            last, changed = outcome, time.monotonic()
        elif time.monotonic() - changed > patience_s:
            return outcome
        await asyncio.sleep(2)
    return await compare(settings, log)


def report(settings: Settings, row: dict[str, Any]) -> None:
    path = settings.run_dir / "reliability.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps([*[r for r in rows if r["scenario"] != row["scenario"]], row], indent=2))
    print("reliability:", " ".join(f"{key}={value}" for key, value in row.items()))


@pytest.mark.parametrize(
    ("scenario", "fault", "listings", "listing_events", "reviews"),
    [
        ("kill -9 worker mid-stream", kill_worker, 1000, 5000, 2000),
        ("Triton down 20 s", triton_down_20_s, 150, 600, 300),
        ("Redis restarted", restart_redis, 150, 600, 300),
        ("kill -9 fusion model process", kill_fusion_stubs, 150, 600, 300),
    ],
)
async def test_a_fault_mid_stream_loses_nothing(
    settings: Settings,
    producer: AIOKafkaProducer,
    topic_reader: Callable[[str], TopicReader],
    capsys: pytest.CaptureFixture[str],
    scenario: str,
    fault: Fault,
    listings: int,
    listing_events: int,
    reviews: int,
) -> None:
    log = event_log(f"rel-{uuid.uuid4().hex[:6]}", listings, listing_events, reviews, seed=listings)
    reader = topic_reader(settings.deadletter_topic)
    started = time.monotonic()
    await produce_all(producer, settings, log)

    async def some_done() -> Outcome | None:
        outcome = await compare(settings, log)
        return outcome if outcome.done + outcome.stale >= listings // 4 else None

    at_fault = await eventually(some_done, "a quarter of the listings stored before the fault", timeout_s=300)
    await fault(settings)
    recovered = time.monotonic()

    final = await settled(settings, log)
    row = {
        "scenario": scenario,
        "listing_events": len(log.listings),
        "review_events": len(log.reviews),
        "listings": listings,
        "stored_before_fault": at_fault.done + at_fault.stale,
        **final.as_row(),
        "wrongly_deadlettered": await wrongly_deadlettered(settings, producer, reader, log),
        "recovery_s": round(time.monotonic() - recovered, 1),
        "total_s": round(time.monotonic() - started, 1),
    }
    with capsys.disabled():
        report(settings, row)
    assert (row["lost"], row["stale"], row["wrongly_deadlettered"]) == (0, 0, 0)
