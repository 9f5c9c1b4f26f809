"""The Faust app: a dying agent fails the worker's health and stops it; settings reach Faust; its gauges."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from stream.config import Settings
from stream.errors import SettingsError
from stream.worker.app import AgentFailures, consume_in_batches, create_app
from stream.worker.delivery import RawMessage


async def crash() -> None:
    raise RuntimeError("consumer lost")


async def finish() -> None:
    return None


async def test_a_dying_agent_is_recorded_and_stops_the_worker() -> None:
    stops: list[str] = []
    failures = AgentFailures(lambda: stops.append("stop"))

    with pytest.raises(RuntimeError):
        await failures.guard("listing_events", crash())
    await failures.guard("review_events", finish())

    assert failures.failed == {"listing_events": "RuntimeError: consumer lost"}
    assert stops == ["stop"]


def test_the_consumer_group_settings_reach_faust() -> None:
    app = create_app(Settings(kafka_session_timeout_s=7.0, kafka_heartbeat_interval_s=2.0))

    assert (app.conf.broker_session_timeout, app.conf.broker_heartbeat_interval) == (7.0, 2.0)
    assert sorted(app.agents) == ["listing_events", "review_events"]


def test_each_agent_keeps_its_setting_of_batches_in_flight() -> None:
    app = create_app(Settings(listing_batches_in_flight=3, review_batches_in_flight=5))

    assert {name: agent.concurrency for name, agent in app.agents.items()} == {
        "listing_events": 3,
        "review_events": 5,
    }


def test_a_batch_size_above_the_model_cap_is_refused() -> None:
    with pytest.raises(SettingsError, match="TOYFUSE_BATCH_SIZE=65"):
        create_app(Settings(batch_size=65))


def agent_up(name: str) -> float | None:
    return REGISTRY.get_sample_value("toyfuse_agent_up", {"agent": name})


async def test_agent_up_is_1_while_the_agent_runs_and_0_once_it_died() -> None:
    failures, started, release = AgentFailures(lambda: None), asyncio.Event(), asyncio.Event()

    async def runs_then_crashes() -> None:
        started.set()
        await release.wait()
        raise RuntimeError("consumer lost")

    running = asyncio.create_task(failures.guard("agent-under-test", runs_then_crashes()))
    await started.wait()
    assert agent_up("agent-under-test") == 1.0
    release.set()
    with pytest.raises(RuntimeError):
        await running
    assert agent_up("agent-under-test") == 0.0


def test_agent_up_exists_for_every_agent_before_it_starts() -> None:
    create_app(Settings())

    assert (agent_up("listing_events"), agent_up("review_events")) == (0.0, 0.0)


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    timestamp: float | None = 1_700_000_000.0
    key: bytes | None = b"k"
    value: bytes | None = b"{}"


@dataclass
class FakeEvent:
    message: FakeMessage


class FakeStream:
    """What consume_in_batches uses of a Faust stream: batches without acks, and acks by hand."""

    def __init__(self, *batches: list[FakeEvent]) -> None:
        self.batches, self.acked = list(batches), []

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        for batch in self.batches:
            yield batch

    async def ack(self, event: FakeEvent) -> bool:
        self.acked.append(event)
        return True


def in_flight(topic: str) -> float | None:
    return REGISTRY.get_sample_value("toyfuse_batches_in_flight", {"topic": topic})


async def test_a_batch_is_in_flight_while_processed_and_no_more_once_it_failed() -> None:
    topic = f"topic-{uuid.uuid4().hex[:8]}"
    events = [FakeEvent(FakeMessage(topic, 0, offset)) for offset in range(2)]
    stream, seen = FakeStream(events[:1], events[1:]), []

    async def process(batch: list[RawMessage]) -> None:
        seen.append((batch[0].offset, in_flight(topic)))
        if batch[0].offset == 1:
            raise RuntimeError("embedding failed")

    with pytest.raises(RuntimeError):
        await consume_in_batches(stream, process, Settings())  # type: ignore[arg-type]

    assert seen == [(0, 1.0), (1, 1.0)]
    assert in_flight(topic) == 0.0
    assert stream.acked == events[:1], "the failed batch is not acknowledged"
