"""On the real stack, a worker refuses a store it would mishandle, and says why: a vector set built otherwise
than its layout (at start and while it runs, instead of dead-lettering what Redis refuses), or review keys
of an older layout (until they are migrated)."""

import asyncio
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from stream.cli import run
from stream.config import Settings
from stream.contracts.index import IndexSchema
from stream.errors import ServerStartError
from stream.stack import worker_process
from stream.stack.process import free_port, pid_alive
from stream.store.client import EmbeddingClient
from stream.store.review_layout import check_review_layout
from stream.store.versions import VersionKeys
from tests.conftest import ListingEventFactory
from tests.integration.conftest import TopicReader, eventually, send
from tests.integration.test_faults import key_of
from tests.integration.test_listing_flow import stored

pytestmark = pytest.mark.usefixtures("running_worker")


async def test_a_worker_whose_layout_asks_other_links_than_the_vector_set_has_exits_saying_so(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
    tmp_path: Path,
) -> None:
    event = listing_event_factory(listing_id=f"layout-{uuid.uuid4().hex[:8]}")
    await send(producer, settings.listings_topic, event, event["listing_id"])
    await stored(client, event["listing_id"], event["version"])  # the vector set exists, built with M 16
    schemas = Path(shutil.copytree(settings.schemas_dir, tmp_path / "schemas"))
    layout = schemas / "embedding_index.yaml"
    assert "build_m: 16 " in layout.read_text(), "the layout's build_m line changed; update this test"
    layout.write_text(layout.read_text().replace("build_m: 16 ", "build_m: 8 "))
    other = settings.model_copy(
        update={
            "run_dir": settings.run_dir / "other-layout",
            "worker_web_port": free_port(),
            "schemas_dir": schemas,
            "app_id": f"{settings.app_id}-other-layout",  # its own group: the shared worker keeps its partitions
        }
    )

    with pytest.raises(ServerStartError, match="exited"):
        await asyncio.to_thread(worker_process.start, other, print)

    log = worker_process.log_file(other).read_text()
    assert re.search(r"toyfuse:similar:fused\S* was built with build_m 16, not 8", log), log[-2000:]
    assert worker_process.FILES.running_pid(other) is None


async def set_holding(redis: Redis, settings: Settings, listing_id: str) -> str:
    """The vector set (the schema's, or a fusion version's) that holds ``listing_id``."""
    keys = VersionKeys.of(IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml"))
    sets = [keys.legacy_set, *(key.decode() for key in await redis.hvals(keys.registry))]
    for key in sets:
        if await redis.execute_command("VEMB", key, listing_id):
            return key
    raise AssertionError(f"no vector set of {sets} holds {listing_id}")


async def test_a_vector_set_rebuilt_with_other_links_under_a_running_worker_stops_it_and_costs_no_event(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
    topic_reader: Callable[[str], TopicReader],
) -> None:
    run = uuid.uuid4().hex[:8]
    first, second = (listing_event_factory(listing_id=f"rebuilt-{run}-{i}") for i in range(2))
    await send(producer, settings.listings_topic, first, first["listing_id"])
    await stored(client, first["listing_id"], first["version"])
    redis = Redis.from_url(settings.redis_url)
    key = await set_holding(redis, settings, first["listing_id"])
    pid = worker_process.FILES.running_pid(settings)
    assert pid is not None
    await redis.rename(key, f"{key}:kept")
    placeholder = np.full(256, 1 / 16, dtype="<f4").tobytes()
    await redis.execute_command("VADD", key, "FP32", placeholder, "placeholder", "Q8", "M", 8)
    try:
        await send(producer, settings.listings_topic, second, second["listing_id"])
        await eventually(
            lambda: asyncio.to_thread(lambda: None if pid_alive(pid) else True), "the worker to stop", 60
        )
        log = worker_process.log_file(settings).read_text()
    finally:
        await redis.delete(key)
        await redis.rename(f"{key}:kept", key)
        await redis.aclose()
        await asyncio.to_thread(worker_process.start, settings, print)

    assert "VectorSetMismatch: Redis refused" in log and "asked M value mismatch" in log
    await stored(client, second["listing_id"], second["version"])  # the restarted worker stored it
    marker = f"rebuilt-marker-{run}"
    await send(producer, settings.listings_topic, b"{not json", marker)
    deadletters = topic_reader(settings.deadletter_topic)
    await deadletters.find(lambda record: key_of(record) == marker, "the marker's dead letter")
    assert [key_of(r) for r in deadletters.records if key_of(r) == second["listing_id"]] == []


async def test_a_worker_refuses_review_keys_of_the_single_server_layout_until_they_are_migrated(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"legacy{uuid.uuid4().hex[:8]}"
    schemas = Path(shutil.copytree(settings.schemas_dir, tmp_path / "schemas"))
    layout = schemas / "embedding_index.yaml"
    assert "key_prefix: toyfuse\n" in layout.read_text(), (
        "the layout's key_prefix line changed; update this test"
    )
    layout.write_text(layout.read_text().replace("key_prefix: toyfuse\n", f"key_prefix: {prefix}\n"))
    other = settings.model_copy(
        update={
            "run_dir": settings.run_dir / "legacy-reviews",
            "worker_web_port": free_port(),
            "schemas_dir": schemas,
            "app_id": f"{settings.app_id}-legacy-reviews",
        }
    )
    redis = Redis.from_url(settings.redis_url)
    await redis.hset(f"{prefix}:review:r1", mapping={"deleted_by": "delete-r1", "deleted_us": "1"})

    with pytest.raises(ServerStartError, match="exited"):
        await asyncio.to_thread(worker_process.start, other, print)
    log = worker_process.log_file(other).read_text()
    assert f"ReviewLayoutOutdated: {prefix} holds 1 review keys of the single-server layout" in log, log[
        -2000:
    ]
    beside_running_worker = other.model_copy(update={"app_id": settings.app_id})
    assert await asyncio.to_thread(run, ["store", "migrate-review-keys"], beside_running_worker) == 1
    refused = capsys.readouterr().err
    assert f"worker(s) consume as group {settings.app_id!r}" in refused and "stop every worker" in refused
    assert await redis.exists(f"{prefix}:review:r1") == 1, "a refused migration moves nothing"
    assert await asyncio.to_thread(run, ["store", "migrate-review-keys"], other) == 0

    assert "moved 0 reviews, 1 deleted reviews' tombstones and 0 review aggregates" in capsys.readouterr().out
    assert await redis.hgetall(f"{prefix}:review-home:r1") == {b"deleted_us": b"1"}
    await check_review_layout(redis, IndexSchema.from_yaml(layout))
    await redis.aclose()
