"""``toyfuse status --json`` against the real stack and worker: servers up, models ready, lag per topic,
a dead letter counted by reason and the serving model version; and with the worker out of reach, the
worker down, exit 1, and the lag read from Kafka instead."""

import asyncio
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from stream.config import Settings
from stream.stack.process import free_port
from stream.status.command import command
from tests.conftest import ListingEventFactory
from tests.integration.conftest import eventually, send

pytestmark = pytest.mark.usefixtures("running_worker")
REQUIRED = ("kafka", "redis", "triton", "worker")


def status_json(settings: Settings) -> tuple[int, dict[str, Any]]:
    """Run ``toyfuse status --json`` (in its own thread: it runs event loops of its own)."""
    result = CliRunner().invoke(command, ["--json", "--interval", "0.5"], obj=settings)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


async def test_status_json_shows_the_running_stack(
    settings: Settings, producer: AIOKafkaProducer, listing_event_factory: ListingEventFactory
) -> None:
    for _ in range(3):
        event = listing_event_factory()
        await send(producer, settings.listings_topic, event, event["listing_id"])
    await send(producer, settings.listings_topic, b"{not json", "status-invalid")

    async def settled() -> tuple[int, dict[str, Any]] | None:
        code, found = await asyncio.to_thread(status_json, settings)
        counted = (found["deadletters"]["by_reason"] or {}).get("invalid_json", 0)
        return (code, found) if found["lag"] and counted >= 1 and found["throughput"] else None

    code, found = await eventually(settled, "toyfuse status to show lag and the dead letter")

    assert code == 0, found["problems"]
    assert found["healthy"] is True and found["problems"] == []
    assert all(found["servers"][name]["up"] for name in REQUIRED)
    assert found["models"] and all(model["ready"] for model in found["models"].values())
    assert {"text_encoder", "fusion", "listing_embedder"} <= set(found["models"])
    assert set(found["lag"]) >= {settings.listings_topic}
    lag = found["lag"][settings.listings_topic]
    assert lag["messages"] >= 0 and 0 <= lag["worst_partition"] < settings.topic_partitions
    assert found["deadletters"]["on_topic"] >= 1
    assert found["deadletters"]["newest"]["reason"] in found["deadletters"]["by_reason"]
    assert found["worker"]["status"] == "ready" and found["worker"]["failed_agents"] == []
    assert found["model_version"] == found["worker"]["model_version"]
    assert found["model_version"].startswith("listing_embedder")
    assert found["store"] == {"problems": []}  # the store the running worker checked and writes


async def test_status_without_the_worker_reads_the_lag_from_kafka(settings: Settings) -> None:
    elsewhere = settings.model_copy(update={"worker_web_port": free_port()})  # the real worker runs on

    code, found = await asyncio.to_thread(status_json, elsewhere)

    assert code == 1
    assert not found["servers"]["worker"]["up"]
    assert all(found["servers"][name]["up"] for name in ("kafka", "redis", "triton"))
    assert found["problems"] == [f"worker is down at 127.0.0.1:{elsewhere.worker_web_port}: not answering"]
    assert found["lag_source"] == "kafka"
    assert set(found["lag"]) >= {settings.listings_topic}
    assert found["lag"][settings.listings_topic]["commit_age_s"] is None
    assert found["throughput"] is None and found["worker"] is None
    assert found["deadletters"]["on_topic"] >= 1
