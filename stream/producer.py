"""Produces JSON events to Kafka, keyed by listing id, optionally at a fixed rate."""

import asyncio
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from stream.config import Settings
from stream.errors import InvalidEventError


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSON-lines file, skipping blank lines.

    Raises:
        InvalidEventError: a line is not a JSON object (the message names the file and line).
    """
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidEventError("invalid_json", f"{path}:{number} is not valid JSON: {exc}") from exc
            if not isinstance(event, dict):
                raise InvalidEventError("invalid_json", f"{path}:{number} is not a JSON object")
            yield event


def event_key(event: dict[str, Any]) -> bytes:
    """Kafka key of an event: its listing id, so one listing's events stay in order on one partition."""
    return str(event["listing_id"]).encode("utf-8")


async def produce(
    producer: AIOKafkaProducer,
    routed: Sequence[tuple[dict[str, Any], str]],
    rate: float | None = None,
    progress: bool = False,
) -> int:
    """Send events in order and wait until Kafka has acknowledged all of them.

    Args:
        producer: a started producer (idempotent, acks=all, is what callers should pass).
        routed: (event, destination topic) pairs; each event has a ``listing_id``.
        rate: events per second, or None for as fast as possible.
        progress: show a progress bar of the events sent on stderr.

    Returns:
        How many events were sent.
    """
    started, pending = time.monotonic(), []
    with tqdm(
        total=len(routed), desc="producing", unit="event", file=sys.stderr, disable=not progress
    ) as bar:
        for count, (event, topic) in enumerate(routed):
            if rate:
                await asyncio.sleep(max(0.0, started + count / rate - time.monotonic()))
            payload = json.dumps(event).encode("utf-8")
            pending.append(await producer.send(topic, payload, key=event_key(event)))
            bar.update(1)
        await asyncio.gather(*pending)
    return len(pending)


def reliable_producer(bootstrap: str) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)


def topic_for(event: dict[str, Any], settings: Settings) -> str:
    """The topic an event belongs on, from its ``type`` (``listing.*`` or ``review.*``).

    Raises:
        InvalidEventError: the type names neither.
    """
    kind = str(event.get("type", "")).split(".")[0]
    topics = {"listing": settings.listings_topic, "review": settings.reviews_topic}
    if kind not in topics:
        raise InvalidEventError(
            "schema_violation",
            f"event {event.get('event_id')!r} has type {event.get('type')!r}; "
            "expected listing.upserted, listing.deleted, review.posted or review.deleted",
        )
    return topics[kind]


async def produce_files(
    settings: Settings, paths: Iterable[Path], rate: float | None = None, progress: bool = False
) -> int:
    """Produce JSON-lines event files, each event to the topic its type names.

    Every line is read and routed before the first is sent, so a bad file sends nothing.

    Args:
        settings: the Kafka address and topics.
        paths: JSON-lines files of listing and review events.
        rate: events per second, or None for as fast as possible.
        progress: show a progress bar of the events sent on stderr.

    Returns:
        How many events were produced.
    """
    return await produce_events(
        settings, [event for path in paths for event in read_jsonl(path)], rate, progress
    )


async def produce_events(
    settings: Settings, events: Sequence[dict[str, Any]], rate: float | None = None, progress: bool = False
) -> int:
    """Produce events, each to the topic its type names, with a producer of its own.

    Every event is routed before the first is sent, so an event of no known type sends nothing.

    Returns:
        How many events were produced.
    """
    routed = [(event, topic_for(event, settings)) for event in events]
    producer = reliable_producer(settings.kafka_bootstrap)
    await producer.start()
    try:
        return await produce(producer, routed, rate, progress)
    finally:
        await producer.stop()
