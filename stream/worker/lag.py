"""The consumer-lag probe: how far the worker's consumer group trails each partition, measured beside the agents."""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream import metrics
from stream.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition's offsets as Kafka reports them."""

    start: int  # log start offset: the oldest record still kept
    end: int  # the offset the next produced record gets
    committed: int | None  # the group's committed offset, None when it never committed one


@dataclass(frozen=True)
class CommitSeen:
    """A partition's committed offset and since when (the probe's clock) it has been that."""

    committed: int | None
    since: float


@dataclass(frozen=True)
class PartitionLag:
    """What the gauges show for one partition."""

    messages: int
    commit_age_s: float


def lag_of(offsets: PartitionOffsets) -> int:
    """Records the group has yet to commit; without a commit, every record kept (pure).

    Records below the log start offset are gone and will never be consumed, so they are no lag.

    >>> lag_of(PartitionOffsets(start=0, end=10, committed=7)), lag_of(PartitionOffsets(3, 10, None))
    (3, 7)
    """
    position = offsets.start if offsets.committed is None else max(offsets.committed, offsets.start)
    return max(0, offsets.end - position)


def measure(
    previous: Mapping[TopicPartition, CommitSeen],
    offsets: Mapping[TopicPartition, PartitionOffsets],
    now: float,
) -> tuple[dict[TopicPartition, PartitionLag], dict[TopicPartition, CommitSeen]]:
    """Lag and commit age of every partition in ``offsets``, and the commits to remember (pure).

    Args:
        previous: what the last measurement returned as commits (empty the first time).
        offsets: this measurement's offsets per partition.
        now: the probe's clock (seconds; only differences matter).

    Returns:
        The gauges' values per partition, and each partition's commit with the time it was first seen.

    >>> tp = TopicPartition("t", 0)
    >>> _, seen = measure({}, {tp: PartitionOffsets(0, 5, 2)}, now=100.0)
    >>> measure(seen, {tp: PartitionOffsets(0, 9, 2)}, now=130.0)[0][tp]
    PartitionLag(messages=7, commit_age_s=30.0)
    """
    lags, seen = {}, {}
    for partition, current in offsets.items():
        commit = previous.get(partition)
        if commit is None or commit.committed != current.committed:
            commit = CommitSeen(current.committed, now)
        seen[partition] = commit
        lags[partition] = PartitionLag(lag_of(current), now - commit.since)
    return lags, seen


class OffsetSource(Protocol):
    """Reads the offsets of the probed partitions (see :class:`KafkaOffsets`)."""

    async def read(self) -> dict[TopicPartition, PartitionOffsets]: ...

    async def close(self) -> None: ...


class KafkaOffsets:
    """Reads end, start and committed offsets with clients of its own, connected on first use.

    The clients are made inside the running event loop (aiokafka requires one), not with the app.
    """

    def __init__(self, bootstrap: str, group_id: str, topics: Sequence[str], timeout_s: float) -> None:
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._topics = list(topics)
        self._timeout_ms = max(1, int(timeout_s * 1000))
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None

    async def _connected(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._clients is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap, request_timeout_ms=self._timeout_ms
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                request_timeout_ms=self._timeout_ms,
            )
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                await consumer.stop()
                await admin.close()
                raise
            self._clients = admin, consumer
        return self._clients

    async def read(self) -> dict[TopicPartition, PartitionOffsets]:
        """Offsets of every partition of the topics (a topic Kafka does not know is left out).

        Raises:
            aiokafka.errors.KafkaError: Kafka could not be reached or answered with an error.
        """
        admin, consumer = await self._connected()
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in await admin.describe_topics(self._topics)
            if topic["error_code"] == 0
            for partition in topic["partitions"]
        ]
        if not partitions:
            return {}
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        commits = await admin.list_consumer_group_offsets(self._group_id, partitions=partitions)
        committed = {tp: meta.offset for tp, meta in commits.items() if meta.offset >= 0}  # -1: none
        return {tp: PartitionOffsets(starts[tp], ends[tp], committed.get(tp)) for tp in partitions}

    async def close(self) -> None:
        """Close the clients, if they were connected."""
        if self._clients is not None:
            admin, consumer = self._clients
            self._clients = None
            await consumer.stop()
            await admin.close()


class LagProbe:
    """Sets the lag and commit-age gauges from one measurement of ``offsets``; never raises on a failure."""

    def __init__(
        self, offsets: OffsetSource, timeout_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._offsets = offsets
        self._timeout_s = timeout_s
        self._clock = clock
        self._seen: dict[TopicPartition, CommitSeen] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "LagProbe":
        """Probe the listing and review topics for the worker's consumer group; one interval per measurement."""
        timeout_s = settings.lag_probe_interval_s
        topics = (settings.listings_topic, settings.reviews_topic)
        return cls(KafkaOffsets(settings.kafka_bootstrap, settings.app_id, topics, timeout_s), timeout_s)

    async def probe(self) -> None:
        """Measure once and set the gauges; a failure is counted and logged, and the gauges keep their values."""
        try:
            async with asyncio.timeout(self._timeout_s):
                offsets = await self._offsets.read()
        except Exception as exc:  # noqa: BLE001 - a measurement must never take the worker down
            metrics.consumer_lag_probe_failures_total.inc()
            log.warning("consumer lag probe failed: %r", exc)
            return
        lags, self._seen = measure(self._seen, offsets, self._clock())
        for tp, lag in lags.items():
            metrics.consumer_lag_messages.labels(tp.topic, str(tp.partition)).set(lag.messages)
            metrics.consumer_commit_age_seconds.labels(tp.topic, str(tp.partition)).set(lag.commit_age_s)

    async def close(self) -> None:
        """Close the offset source's clients."""
        await self._offsets.close()
