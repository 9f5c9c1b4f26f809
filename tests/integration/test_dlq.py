"""``toyfuse dlq list`` and ``replay`` against the real Kafka and worker: list, dry run, replay twice.

Sync tests: the commands run their own event loops.
"""

import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner, Result

from stream.cli import main
from stream.config import Settings
from stream.contracts.schemas import format_rfc3339
from stream.deadletters.reader import partitions_of
from stream.stack.worker_process import settings_env
from tests.conftest import ListingEventFactory
from tests.integration.conftest import WAIT_S

pytestmark = pytest.mark.usefixtures("running_worker")


def toyfuse(settings: Settings, *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=settings_env(settings))
    assert result.exit_code == 0, result.output
    return result


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The topic's end offset per partition, now."""

    async def read() -> dict[int, int]:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        await consumer.start()
        try:
            return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
        finally:
            await consumer.stop()

    offsets = asyncio.run(read())
    assert offsets, f"topic {topic} has no partitions"
    return offsets


def dead_letters_of(settings: Settings, event_id: str, since: str, count: int) -> list[dict[str, Any]]:
    """Wait until ``toyfuse dlq list --json`` shows ``count`` dead letters of the event; return them."""
    deadline = time.monotonic() + WAIT_S
    while True:
        printed = toyfuse(settings, "dlq", "list", "--json", "--since", since).stdout.splitlines()
        records = [json.loads(line) for line in printed]
        mine = [r for r in records if json.loads(base64.b64decode(r["original_b64"]))["event_id"] == event_id]
        if len(mine) >= count:
            return mine
        assert time.monotonic() < deadline, f"{count} dead letters of {event_id} did not appear in time"
        time.sleep(0.5)


def test_a_dead_letter_is_listed_and_replayed_once(
    settings: Settings, tmp_path: Path, listing_event_factory: ListingEventFactory
) -> None:
    since = format_rfc3339(datetime.now(UTC))
    broken = listing_event_factory(version="three")
    events = tmp_path / "broken.jsonl"
    events.write_text(json.dumps(broken) + "\n")
    toyfuse(settings, "replay", str(events))

    [dead] = dead_letters_of(settings, broken["event_id"], since, 1)
    assert (dead["reason"], dead["source"]["topic"]) == ("schema_violation", settings.listings_topic)
    listed = toyfuse(settings, "dlq", "list", "--reason", "schema_violation", "--since", since).stdout
    assert f"schema_violation  {settings.listings_topic}[{dead['source']['partition']}]@" in listed
    assert f"key={broken['listing_id']}" in listed and "1 dead letter: schema_violation 1" in listed
    assert (
        "0 dead letters"
        in toyfuse(settings, "dlq", "list", "--reason", "invalid_json", "--since", since).stdout
    )

    before = end_offsets(settings, settings.listings_topic)
    dry = toyfuse(settings, "dlq", "replay", "--since", since, "--dry-run").stdout
    assert f"would replay  {dead['failed_at']}" in dry and "would replay 1, skipped 0" in dry
    assert end_offsets(settings, settings.listings_topic) == before

    assert (
        "replayed 1, skipped 0 as already replayed"
        in toyfuse(settings, "dlq", "replay", "--since", since).stdout
    )
    after = end_offsets(settings, settings.listings_topic)
    assert sum(after.values()) == sum(before.values()) + 1
    dead_letters_of(settings, broken["event_id"], since, 2)  # the replay reached the worker, and failed again

    again = toyfuse(settings, "dlq", "replay", "--since", since).stdout
    assert "replayed 0, skipped 2 as already replayed" in again
    assert end_offsets(settings, settings.listings_topic) == after
