"""The consumer-lag probe: its pure math, and the gauges it sets from an offset source (a stand-in for Kafka)."""

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from stream.config import Settings
from stream.worker.lag import CommitSeen, LagProbe, PartitionLag, PartitionOffsets, lag_of, measure
from tests.conftest import free_port

TP = TopicPartition("toys.listings.v1", 0)
OTHER = TopicPartition("toys.reviews.v1", 3)


@pytest.mark.parametrize(
    ("offsets", "lag"),
    [
        (PartitionOffsets(start=0, end=10, committed=10), 0),
        (PartitionOffsets(start=0, end=10, committed=4), 6),
        (PartitionOffsets(start=0, end=10, committed=None), 10),
        (PartitionOffsets(start=7, end=10, committed=None), 3),  # what retention deleted is not unread
        (PartitionOffsets(start=7, end=10, committed=2), 3),
        (PartitionOffsets(start=0, end=0, committed=None), 0),
    ],
)
def test_lag_is_what_the_group_has_not_committed(offsets: PartitionOffsets, lag: int) -> None:
    assert lag_of(offsets) == lag


def test_commit_age_counts_from_first_sight_until_the_commit_moves() -> None:
    lags, seen = measure({}, {TP: PartitionOffsets(0, 5, 2), OTHER: PartitionOffsets(0, 3, None)}, now=100.0)
    assert lags == {TP: PartitionLag(3, 0.0), OTHER: PartitionLag(3, 0.0)}
    assert seen == {TP: CommitSeen(2, 100.0), OTHER: CommitSeen(None, 100.0)}

    lags, seen = measure(
        seen, {TP: PartitionOffsets(0, 9, 2), OTHER: PartitionOffsets(0, 3, None)}, now=112.5
    )
    assert lags == {TP: PartitionLag(7, 12.5), OTHER: PartitionLag(3, 12.5)}, "stuck: lag and age grow"

    lags, seen = measure(seen, {TP: PartitionOffsets(0, 9, 9), OTHER: PartitionOffsets(0, 3, 3)}, now=120.0)
    assert lags == {TP: PartitionLag(0, 0.0), OTHER: PartitionLag(0, 0.0)}, "a moved commit resets the age"
    assert seen == {TP: CommitSeen(9, 120.0), OTHER: CommitSeen(3, 120.0)}

    lags, _ = measure(seen, {TP: PartitionOffsets(0, 9, 9)}, now=150.0)
    assert lags == {TP: PartitionLag(0, 30.0)}, "caught up and idle: the commit ages, with no lag"


class Offsets:
    """An offset source answering from a list: offsets, or an exception to raise."""

    def __init__(self, *answers: dict[TopicPartition, PartitionOffsets] | Exception) -> None:
        self.answers = list(answers)
        self.closed = False

    async def read(self) -> dict[TopicPartition, PartitionOffsets]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        self.closed = True


class Hanging:
    """An offset source that never answers (a Kafka that accepts connections and says nothing)."""

    async def read(self) -> dict[TopicPartition, PartitionOffsets]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None


def gauge(name: str, tp: TopicPartition) -> float | None:
    return REGISTRY.get_sample_value(name, {"topic": tp.topic, "partition": str(tp.partition)})


def failures() -> float:
    return REGISTRY.get_sample_value("toyfuse_consumer_lag_probe_failures_total") or 0.0


async def test_the_probe_sets_both_gauges_and_a_failure_keeps_them() -> None:
    tp = TopicPartition(f"topic-{uuid.uuid4().hex[:8]}", 1)
    clock = iter([10.0, 25.0])
    offsets = Offsets(
        {tp: PartitionOffsets(0, 8, 3)}, KafkaConnectionError("no broker"), {tp: PartitionOffsets(0, 9, 3)}
    )
    probe = LagProbe(offsets, timeout_s=5.0, clock=lambda: next(clock))
    before = failures()

    await probe.probe()
    assert (gauge("toyfuse_consumer_lag_messages", tp), gauge("toyfuse_consumer_commit_age_seconds", tp)) == (
        5.0,
        0.0,
    )
    await probe.probe()
    assert failures() == before + 1
    assert gauge("toyfuse_consumer_lag_messages", tp) == 5.0, "the last measurement stays"
    await probe.probe()
    assert (gauge("toyfuse_consumer_lag_messages", tp), gauge("toyfuse_consumer_commit_age_seconds", tp)) == (
        6.0,
        15.0,
    )
    await probe.close()
    assert offsets.closed


async def test_a_measurement_that_never_answers_is_a_failure() -> None:
    before = failures()
    await LagProbe(Hanging(), timeout_s=0.01).probe()
    assert failures() == before + 1


async def test_an_unexpected_error_is_a_failure_too() -> None:
    before = failures()
    await LagProbe(Offsets(KeyError("partition")), timeout_s=5.0).probe()
    assert failures() == before + 1


async def test_an_unreachable_kafka_is_counted_not_raised() -> None:
    settings = Settings(kafka_port=free_port(), lag_probe_interval_s=0.5)  # nothing listens there
    probe, before = LagProbe.from_settings(settings), failures()
    await probe.probe()
    await probe.close()
    assert failures() == before + 1
