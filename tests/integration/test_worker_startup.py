"""A worker's start on the real stack: it refuses a layout that Redis's vector set would refuse."""

import asyncio
import re
import shutil
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.errors import ServerStartError
from stream.stack import worker_process
from stream.stack.process import free_port
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory
from tests.integration.conftest import send
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
