"""Reads the dead-letter topic from its beginning up to its end offsets at the time of the call."""

import sys
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from tqdm import tqdm

from stream.config import Settings
from stream.contracts.events import EventDecoder
from stream.deadletters.records import DeadLetter, parse_deadletter
from stream.errors import DeadLetterError, InvalidEventError

# A read that makes no progress for this long has lost its broker: fail instead of waiting for ever.
STALL_S = 30.0
_POLL_MS = 500


@dataclass
class Readout:
    """What a read found: the valid records in topic order, and how many records were not valid ones."""

    letters: list[DeadLetter] = field(default_factory=list)
    unreadable: int = 0


async def read_deadletters(settings: Settings, *, progress: bool = False) -> Readout:
    """Read every record of ``settings.deadletter_topic`` that exists now, then stop.

    Args:
        settings: where Kafka, the topic and the schemas are.
        progress: show a progress bar on stderr.

    Returns:
        The records, partition by partition in offset order.

    Raises:
        DeadLetterError: Kafka is unreachable, the topic does not exist, or the read stalls.
    """
    topic = settings.deadletter_topic
    partitions = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
    if not partitions:
        raise DeadLetterError(
            f"topic {topic} does not exist on {settings.kafka_bootstrap}; create it with `toyfuse stack up`"
        )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise _unreachable(settings, exc) from exc
    try:
        return await read_partitions(consumer, partitions, EventDecoder(settings.schemas_dir), progress)
    finally:
        await consumer.stop()


async def partitions_of(settings: Settings, topic: str) -> list[int]:
    """The partition ids of ``topic``, none when it does not exist (asking never creates it).

    Raises:
        DeadLetterError: Kafka is unreachable.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        await admin.start()
        described = await admin.describe_topics()  # every topic: naming one could auto-create it
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc
    finally:
        await admin.close()
    found = [t for t in described if t["topic"] == topic]
    return sorted(p["partition"] for t in found for p in t["partitions"])


async def read_partitions(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    decoder: EventDecoder,
    progress: bool = False,
) -> Readout:
    """Read partitions with a started consumer (no group), from their beginning to today's end offsets.

    Raises:
        DeadLetterError: no record arrives for ``STALL_S`` seconds before the end offsets are reached.
    """
    consumer.assign(partitions)
    begin, end = await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
    await consumer.seek_to_beginning(*partitions)
    readout, remaining = Readout(), {tp for tp in partitions if end[tp] > begin[tp]}
    total = sum(end[tp] - begin[tp] for tp in partitions)
    desc = f"reading {partitions[0].topic}"
    with tqdm(total=total, desc=desc, unit="record", file=sys.stderr, disable=not progress) as bar:
        last_progress = time.monotonic()
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=_POLL_MS)
            for tp, messages in batches.items():
                for message in messages:
                    if message.offset < end[tp]:
                        _collect(readout, decoder, tp, message.offset, message.value)
                        bar.update(1)
                        last_progress = time.monotonic()
            remaining = {tp for tp in remaining if await consumer.position(tp) < end[tp]}
            if remaining and time.monotonic() - last_progress > STALL_S:
                raise DeadLetterError(_stalled(remaining, end))
    return readout


def _unreachable(settings: Settings, exc: KafkaError) -> DeadLetterError:
    return DeadLetterError(
        f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc}); start it with `toyfuse stack up` "
        "or point TOYFUSE_KAFKA_HOST / TOYFUSE_KAFKA_PORT at the broker"
    )


def _collect(
    readout: Readout, decoder: EventDecoder, tp: TopicPartition, offset: int, value: bytes | None
) -> None:
    try:
        readout.letters.append(parse_deadletter(decoder, tp.topic, tp.partition, offset, value or b""))
    except InvalidEventError:
        readout.unreadable += 1


def _stalled(remaining: set[TopicPartition], end: dict[TopicPartition, int]) -> str:
    where = ", ".join(f"{tp.topic}[{tp.partition}] (end {end[tp]})" for tp in sorted(remaining))
    return (
        f"reading stopped short of {where}: no record for {STALL_S:g} s; "
        "check that Kafka is up (`toyfuse stack status`) and run the command again"
    )
