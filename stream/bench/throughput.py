"""Events per second three ways, in one run: the models called directly at their best concurrency (the
ceiling), one item per call (the naive baseline), and the whole pipeline, Kafka -> worker -> Triton ->
Redis, with each listing's freshness (produced -> stored, from the announcement the worker publishes)
and, for reviews, the time until the worker has handled every one."""

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.bench.stats import latency_summary, rate
from stream.bench.workload import Event
from stream.config import Settings
from stream.contracts.schemas import parse_rfc3339
from stream.errors import FeatureServiceError
from stream.producer import event_key, reliable_producer, topic_for
from stream.status.probes import worker_scrape

Progress = Callable[[int], None]
Item = TypeVar("Item")
Embed = Callable[[Sequence[Item]], Awaitable[Any]]
CONCURRENCIES = (1, 2, 4)


class PipelineTimeout(FeatureServiceError):
    """The worker did not store every benchmark event in time."""


@dataclass(frozen=True)
class PipelineRun:
    """One pass of events through the pipeline: when each was sent and when the worker stored it."""

    sent_at: dict[str, float]  # event_id -> wall-clock time it was handed to the producer
    stored_at: dict[str, float]  # event_id -> the announced ``updated_at``

    def freshness_s(self) -> list[float]:
        """Seconds from produce to stored, per event."""
        return [self.stored_at[event_id] - sent for event_id, sent in self.sent_at.items()]

    def listings_per_s(self) -> float:
        """Events over the time from the first send to the last store."""
        return rate(len(self.sent_at), max(self.stored_at.values()) - min(self.sent_at.values()))

    def summary(self) -> dict[str, Any]:
        """Throughput and the freshness percentiles (the report's numbers)."""
        return {"per_s": self.listings_per_s(), "freshness": latency_summary(self.freshness_s())}


def combined_ceiling(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ceiling over several rounds of :func:`ceiling`: each concurrency's median rate, and the best of
    those medians (pure). Taking each round's best instead would favour whichever concurrency a stall
    spared.

    >>> combined_ceiling([{"by_concurrency": {"1": 5.0, "2": 9.0}, "per_s": 9.0, "batch": 32},
    ...                   {"by_concurrency": {"1": 6.0, "2": 7.0}, "per_s": 7.0, "batch": 32},
    ...                   {"by_concurrency": {"1": 7.0, "2": 8.0}, "per_s": 8.0, "batch": 32}])["per_s"]
    8.0
    """
    by_concurrency = {
        key: statistics.median(found["by_concurrency"][key] for found in rounds)
        for key in rounds[0]["by_concurrency"]
    }
    best = max(by_concurrency, key=lambda key: by_concurrency[key])
    return {
        "per_s": by_concurrency[best],
        "best_concurrency": int(best),
        "by_concurrency": by_concurrency,
        "batch": rounds[0]["batch"],
        "by_round": [found["per_s"] for found in rounds],
    }


def combined_rates(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The median ``per_s`` of several rounds, and each round's (pure)."""
    rates = [found["per_s"] for found in rounds]
    return {"per_s": statistics.median(rates), "by_round": rates}


def combined_runs(runs: Sequence[PipelineRun]) -> dict[str, Any]:
    """The median rate of several pipeline runs, each run's, and the freshness of all their events (pure)."""
    samples = [seconds for run in runs for seconds in run.freshness_s()]
    return combined_rates([{"per_s": run.listings_per_s()} for run in runs]) | {
        "freshness": latency_summary(samples)
    }


async def ceiling(
    embed: Embed[Item], items: Sequence[Item], batch: int, progress: Progress
) -> dict[str, Any]:
    """Call ``embed`` on batches of ``batch`` items at each of ``CONCURRENCIES`` calls in flight; the best
    rate is the ceiling."""
    batches = [items[start : start + batch] for start in range(0, len(items), batch)]
    rates = {}
    for concurrency in CONCURRENCIES:
        started = time.perf_counter()
        await _drain(embed, list(batches), concurrency, progress)
        rates[str(concurrency)] = rate(len(items), time.perf_counter() - started)
    best = max(rates, key=lambda key: rates[key])
    return {"per_s": rates[best], "best_concurrency": int(best), "by_concurrency": rates, "batch": batch}


async def _drain(
    embed: Embed[Item], queue: list[Sequence[Item]], concurrency: int, progress: Progress
) -> None:
    """Embed every batch in ``queue`` with ``concurrency`` calls in flight."""

    async def worker() -> None:
        while queue:
            chunk = queue.pop()
            await embed(chunk)
            progress(len(chunk))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def naive(embed: Embed[Item], items: Sequence[Item], progress: Progress) -> dict[str, Any]:
    """Call ``embed`` one item per call, one call at a time (what an unbatched consumer would do)."""
    started = time.perf_counter()
    for item in items:
        await embed([item])
        progress(1)
    return {"per_s": rate(len(items), time.perf_counter() - started)}


async def stream_through(
    settings: Settings,
    events: Sequence[Event],
    progress: Progress,
    events_per_s: float | None = None,
    timeout_s: float = 600.0,
) -> PipelineRun:
    """Produce ``events`` (at ``events_per_s``, or as fast as Kafka takes them) and wait until the worker has
    announced every one of them on the embeddings topic.

    Raises:
        PipelineTimeout: some event was not announced within ``timeout_s``.
    """
    consumer = AIOKafkaConsumer(
        settings.embeddings_topic, bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    producer = reliable_producer(settings.kafka_bootstrap)
    await producer.start()
    try:
        partitions = await _assigned(consumer)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)  # fix the starting offsets before the first send
        sent_at: dict[str, float] = {}
        sending = asyncio.create_task(_send(producer, settings, events, sent_at, events_per_s))
        stored_at = await _collect(consumer, {event["event_id"] for event in events}, progress, timeout_s)
        await sending
        return PipelineRun(sent_at, stored_at)
    finally:
        await producer.stop()
        await consumer.stop()


async def _assigned(consumer: AIOKafkaConsumer, timeout_s: float = 30.0) -> list[TopicPartition]:
    """The partitions a group-less consumer was given (all of its topic's), once its metadata arrived.

    Raises:
        PipelineTimeout: no partition within ``timeout_s`` (the topic is missing: run `toyfuse stack up`).
    """
    deadline = time.monotonic() + timeout_s
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise PipelineTimeout(
                f"no partition of the embeddings topic within {timeout_s:g} s; `toyfuse stack up` creates it"
            )
        await asyncio.sleep(0.1)
    return sorted(consumer.assignment())


async def _send(
    producer: Any,
    settings: Settings,
    events: Sequence[Event],
    sent_at: dict[str, float],
    events_per_s: float | None,
) -> None:
    started, pending = time.monotonic(), []
    for count, event in enumerate(events):
        if events_per_s:
            await asyncio.sleep(max(0.0, started + count / events_per_s - time.monotonic()))
        sent_at[event["event_id"]] = time.time()
        pending.append(
            await producer.send(topic_for(event, settings), json.dumps(event).encode(), key=event_key(event))
        )
    await asyncio.gather(*pending)


async def _collect(
    consumer: AIOKafkaConsumer, wanted: set[str], progress: Progress, timeout_s: float
) -> dict[str, float]:
    stored_at: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(stored_at) < len(wanted):
        if time.monotonic() > deadline:
            raise PipelineTimeout(
                f"the worker stored {len(stored_at)} of {len(wanted)} benchmark events within {timeout_s:g} s; "
                "read its log under <run_dir>/worker/ and check `toyfuse stack status`"
            )
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                announced = json.loads(record.value)
                source = announced.get("source_event_id")
                if source in wanted and source not in stored_at:
                    stored_at[source] = parse_rfc3339(announced["updated_at"]).timestamp()
                    progress(1)
    return stored_at


async def handled_through(
    settings: Settings, events: Sequence[Event], topic: str, progress: Progress, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Produce ``events`` to ``topic`` as fast as Kafka takes them; the rate until the worker has handled
    every one (stored, found stale or dead-lettered), read off its ``toyfuse_events_processed_total``.

    Not its committed offsets: Faust commits every few seconds, which would round a burst's time up to
    the next commit."""
    producer = reliable_producer(settings.kafka_bootstrap)
    await producer.start()
    try:
        before = await _handled(settings, topic)
        started = time.time()
        await _send(producer, settings, events, {}, None)
        deadline, done = time.monotonic() + timeout_s, 0
        while done < len(events):
            if time.monotonic() > deadline:
                raise PipelineTimeout(
                    f"the worker handled {done} of {len(events)} benchmark events on {topic} within "
                    f"{timeout_s:g} s; read its log under <run_dir>/worker/"
                )
            now_done = min(len(events), int(await _handled(settings, topic) - before))
            progress(now_done - done)
            done = now_done
            await asyncio.sleep(0.05)
        return {"per_s": rate(len(events), time.time() - started)}
    finally:
        await producer.stop()


async def _handled(settings: Settings, topic: str) -> float:
    page = await asyncio.to_thread(worker_scrape, settings)
    return page.sum_by("toyfuse_events_processed_total", "topic").get(topic, 0.0)
