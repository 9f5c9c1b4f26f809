"""Replays dead letters: each selected original goes back, with its key, to its source topic once.

Only whole originals of the worker's own topics are replayed; a record cut short (``original_truncated``)
is counted as not replayable, since producing its first 256 KiB would be a different message.

Producing an original a second time leaves the stored state as the first time did: the version
guard applies a listing version once (the same event again is "already applied" and only
re-announced on toys.embeddings.v1), a ``review.posted`` whose event_id is stored is a duplicate,
and a ``review.deleted`` of an absent review changes nothing. One limit, until reviews leave
tombstones: a ``review.posted`` replayed after its review was deleted brings the review back. The
ledger (``ledger.py``) keeps this command from producing a record twice.
"""

import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tqdm import tqdm

from stream.config import Settings
from stream.deadletters.ledger import ReplayLedger, ledger_path, locked_ledger, read_ledger
from stream.deadletters.reader import read_deadletters
from stream.deadletters.records import DeadLetter, Selection
from stream.errors import DeadLetterError
from stream.producer import reliable_producer


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay does with each selected dead letter; ``to_replay`` in source order."""

    to_replay: list[DeadLetter]
    already_replayed: list[DeadLetter]
    not_replayable: list[tuple[DeadLetter, str]]  # with why (see ``replay_problem``)


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of ``replay_deadletters``."""

    plan: ReplayPlan
    replayed: int
    unreadable: int  # records on the dead-letter topic that are not toys.deadletter.v1
    dry_run: bool


def replayable_topics(settings: Settings) -> frozenset[str]:
    """The topics a replay may produce to: the worker's listing and review topics."""
    return frozenset({settings.listings_topic, settings.reviews_topic})


def replay_problem(letter: DeadLetter, topics: Collection[str]) -> str | None:
    """Why ``letter`` cannot be replayed, or None when it can."""
    if letter.source_topic not in topics:
        return f"{letter.source_topic} is not a topic the worker consumes"
    if not letter.complete:
        return "the record holds only part of the original"
    return None


def plan_replay(letters: Iterable[DeadLetter], ledger: ReplayLedger, topics: Collection[str]) -> ReplayPlan:
    """Sort dead letters into replay (source order, one per original), already replayed, not replayable."""
    plan = ReplayPlan([], [], [])
    planned: set[str] = set()
    for letter in sorted(letters, key=lambda d: (d.source_topic, d.source_partition, d.source_offset)):
        problem = replay_problem(letter, topics)
        if problem is not None:
            plan.not_replayable.append((letter, problem))
        elif ledger.replayed(letter) or letter.fingerprint in planned:
            plan.already_replayed.append(letter)
        else:
            planned.add(letter.fingerprint)
            plan.to_replay.append(letter)
    return plan


async def produce_replays(
    producer: AIOKafkaProducer, letters: list[DeadLetter], ledger: ReplayLedger, progress: bool = False
) -> int:
    """Produce each original with its key to its source topic; mark each in the ledger once acknowledged.

    Args:
        producer: a started producer (idempotent, acks=all: ``stream.producer.reliable_producer``).
        letters: what to replay, in order.
        ledger: marks every acknowledged replay.
        progress: show a progress bar on stderr.

    Returns:
        How many originals were produced.

    Raises:
        DeadLetterError: Kafka refused a record; those acknowledged before it are in the ledger.
    """
    acked = 0
    with tqdm(
        total=len(letters), desc="replaying", unit="record", file=sys.stderr, disable=not progress
    ) as bar:
        try:
            pending = [(d, await producer.send(d.source_topic, d.original, key=d.key)) for d in letters]
            for letter, ack in pending:
                await ack
                ledger.mark(letter, datetime.now(UTC))
                acked += 1
                bar.update(1)
        except KafkaError as exc:
            raise DeadLetterError(
                f"Kafka refused a replay ({exc}) after {acked} of {len(letters)} were acknowledged and marked "
                "in the ledger; run the command again to replay the rest (a record sent but not marked is "
                "produced once more, which the version guard and review event ids make harmless)"
            ) from exc
    return acked


async def replay_deadletters(
    settings: Settings, selection: Selection, *, dry_run: bool = False, progress: bool = False
) -> ReplayReport:
    """Replay the selected dead letters that are replayable and not replayed yet.

    Args:
        settings: Kafka, the topics and the run folder (which holds the ledger).
        selection: which dead letters.
        dry_run: plan only: produce nothing and leave the ledger as it is.
        progress: show progress bars on stderr.

    Returns:
        The plan and how many records were produced.

    Raises:
        DeadLetterError: Kafka is unreachable or refused a record, or another replay is running.
    """
    readout = await read_deadletters(settings, progress=progress)
    selected, topics, path = (
        selection.apply(readout.letters),
        replayable_topics(settings),
        ledger_path(settings),
    )
    if dry_run:
        return ReplayReport(plan_replay(selected, read_ledger(path), topics), 0, readout.unreadable, True)
    with locked_ledger(path) as ledger:
        plan = plan_replay(selected, ledger, topics)
        replayed = await _produce(settings, plan.to_replay, ledger, progress) if plan.to_replay else 0
    return ReplayReport(plan, replayed, readout.unreadable, False)


async def _produce(
    settings: Settings, letters: list[DeadLetter], ledger: ReplayLedger, progress: bool
) -> int:
    producer = reliable_producer(settings.kafka_bootstrap)
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise DeadLetterError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); start it with `toyfuse stack up`"
        ) from exc
    try:
        return await produce_replays(producer, letters, ledger, progress)
    finally:
        await producer.stop()


def summary(report: ReplayReport) -> str:
    """One line: replayed (or would replay), skipped as already replayed, skipped as not replayable."""
    plan = report.plan
    done = f"would replay {len(plan.to_replay)}" if report.dry_run else f"replayed {report.replayed}"
    line = (
        f"{done}, skipped {len(plan.already_replayed)} as already replayed, "
        f"{len(plan.not_replayable)} as not replayable"
    )
    if report.unreadable:
        line += f", {report.unreadable} unreadable records on the dead-letter topic"
    return line + ("; dry run, nothing produced" if report.dry_run else "")
