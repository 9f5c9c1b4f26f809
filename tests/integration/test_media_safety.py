"""SSRF through the real worker: media URIs that point inside this machine never reach it, and the
listing is still embedded from its text, its record naming each refused URI."""

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.store.client import EmbeddingClient
from tests.conftest import ListingEventFactory
from tests.integration.conftest import send
from tests.integration.test_listing_flow import stored

pytestmark = pytest.mark.usefixtures("running_worker")


class Canary(ThreadingHTTPServer):
    """A loopback HTTP server nobody may reach through toyfuse; counts every request it gets."""

    requests = 0


class CountingHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, Canary)
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def canary() -> Iterator[Canary]:
    server = Canary(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_media_uris_aimed_inside_the_machine_are_refused_and_never_contacted(
    settings: Settings,
    producer: AIOKafkaProducer,
    client: EmbeddingClient,
    listing_event_factory: ListingEventFactory,
    canary: Canary,
) -> None:
    port = canary.server_address[1]
    uris = [
        f"http://127.0.0.1:{port}/a.png",
        f"http://localhost:{port}/b.png",
        f"http://0x7f000001:{port}/c.png",
        f"http://user@127.0.0.1:{port}/d.png",
        f"http://2130706433:{settings.redis_port}/e.mp4",
    ]
    event = listing_event_factory(
        listing_id=f"ssrf-{uuid.uuid4().hex[:8]}",
        images=[{"uri": uri} for uri in uris[:4]],
        videos=[{"uri": uris[4]}],
    )

    await send(producer, settings.listings_topic, event, event["listing_id"])
    record = await stored(client, event["listing_id"], 1)

    assert canary.requests == 0
    assert record.modalities == ["text"]
    problems = {problem["uri"]: problem["reason"] for problem in record.metadata["media_problems"]}
    assert set(problems) == set(uris)
    assert set(problems.values()) <= {"forbidden_address", "forbidden_userinfo", "invalid_uri"}
