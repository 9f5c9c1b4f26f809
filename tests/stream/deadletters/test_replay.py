"""Replay: which dead letters are produced again, in what order, and that a second run produces none."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from stream.config import Settings
from stream.contracts.events import DEADLETTER_MAX_ORIGINAL_BYTES
from stream.deadletters.ledger import ReplayLedger, locked_ledger, read_ledger
from stream.deadletters.replay import (
    ReplayPlan,
    ReplayReport,
    plan_replay,
    produce_replays,
    replayable_topics,
    summary,
)
from stream.errors import DeadLetterError
from tests.stream.deadletters.conftest import DeadLetterFactory

TOPICS = replayable_topics(Settings())


class FakeProducer:
    """Records what is sent; every send is acknowledged unless it is the ``fail_at``-th."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self._fail_at = fail_at

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> "asyncio.Future[Any]":
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if len(self.sent) == self._fail_at:
            ack.set_exception(KafkaTimeoutError())
        else:
            ack.set_result(None)
        self.sent.append((topic, value, key))
        return ack


def test_the_plan_replays_complete_originals_of_worker_topics_once_in_source_order(
    deadletter_factory: DeadLetterFactory,
) -> None:
    second = deadletter_factory(value=b"b", partition=1, offset=8)
    first = deadletter_factory(value=b"a", partition=1, offset=3)
    copy = deadletter_factory(value=b"a", partition=1, offset=40)  # the same original, again
    done = deadletter_factory(value=b"c")
    foreign = deadletter_factory(topic="toys.embeddings.v1")
    cut = deadletter_factory(value=b"x" * (DEADLETTER_MAX_ORIGINAL_BYTES + 1), partition=3)
    ledger = ReplayLedger()
    ledger.mark(done, datetime.now(UTC))

    plan = plan_replay([second, first, copy, done, foreign, cut], ledger, TOPICS)

    assert plan.to_replay == [first, second] and plan.already_replayed == [copy, done]
    assert plan.not_replayable == [
        (foreign, "toys.embeddings.v1 is not a topic the worker consumes"),
        (cut, "the record holds only part of the original"),
    ]


async def test_replaying_produces_originals_with_their_keys_and_marks_them(
    deadletter_factory: DeadLetterFactory,
) -> None:
    letters = [
        deadletter_factory(value=b"a", key=None),
        deadletter_factory(value=b"b", topic="toys.reviews.v1"),
    ]
    producer, ledger = FakeProducer(), ReplayLedger()

    assert await produce_replays(producer, letters, ledger) == 2  # type: ignore[arg-type]

    assert producer.sent == [("toys.listings.v1", b"a", None), ("toys.reviews.v1", b"b", b"toy-0001")]
    assert all(ledger.replayed(letter) for letter in letters)


async def test_a_second_run_replays_nothing(tmp_path: Path, deadletter_factory: DeadLetterFactory) -> None:
    path, letters = (
        tmp_path / "replayed.jsonl",
        [deadletter_factory(value=b"a"), deadletter_factory(value=b"b")],
    )
    producer = FakeProducer()
    for _ in range(2):
        with locked_ledger(path) as ledger:
            plan = plan_replay(letters, ledger, TOPICS)
            await produce_replays(producer, plan.to_replay, ledger)  # type: ignore[arg-type]

    assert len(producer.sent) == 2
    assert plan_replay(letters, read_ledger(path), TOPICS).already_replayed == letters


async def test_a_refused_record_stops_the_replay_keeping_the_acknowledged_ones(
    deadletter_factory: DeadLetterFactory,
) -> None:
    letters = [deadletter_factory(value=bytes([n])) for n in range(3)]
    ledger = ReplayLedger()

    with pytest.raises(DeadLetterError, match="after 1 of 3 were acknowledged"):
        await produce_replays(FakeProducer(fail_at=1), letters, ledger)  # type: ignore[arg-type]

    assert [ledger.replayed(letter) for letter in letters] == [True, False, False]


def test_summary_names_every_count(deadletter_factory: DeadLetterFactory) -> None:
    letter = deadletter_factory()
    plan = ReplayPlan(to_replay=[letter], already_replayed=[letter, letter], not_replayable=[(letter, "why")])

    assert summary(ReplayReport(plan, 1, 0, dry_run=False)).startswith(
        "replayed 1, skipped 2 as already replayed, 1 as not replayable"
    )
    dry = summary(ReplayReport(plan, 0, 3, dry_run=True))
    assert dry.startswith("would replay 1, skipped 2") and "3 unreadable" in dry and "nothing produced" in dry
