"""Tests for stream/status/probes.py and take_snapshot against a fake worker and Triton on 127.0.0.1."""

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from stream.config import REPO_ROOT, Settings
from stream.contracts.index import IndexSchema
from stream.status.exceptions import Unreachable
from stream.status.probes import ModelState, store_problems, triton_models, worker_health, worker_scrape
from stream.status.snapshot import take_snapshot
from stream.store.review_layout import layout_key
from tests.conftest import free_port

HEALTH = {
    "status": "starting",
    "model_version": None,
    "agents": {"listing_events": "init"},
    "failed_agents": [],
}
INDEX = [
    {"name": "text_encoder", "version": "1", "state": "READY"},
    {"name": "fusion", "version": "2", "state": "UNAVAILABLE", "reason": "unloaded"},
]


class FakeServer(ThreadingHTTPServer):
    """The worker's /health (503 while starting) and /metrics, whose counter grows 5 a read, and
    Triton's repository index."""

    scrapes = 0


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(503, "application/json", json.dumps(HEALTH))
        elif self.path == "/metrics":
            self.server.scrapes += 1
            count = 5 * self.server.scrapes
            page = f'toyfuse_events_processed_total{{topic="t",outcome="applied"}} {count}\n'
            self._send(200, "text/plain", page)
        else:
            self._send(404, "text/plain", "no such page")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(200, "application/json", json.dumps(INDEX))

    def _send(self, status: int, content_type: str, body: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[Settings, FakeServer]]:
    """Settings whose worker and Triton ports are one fake server; Kafka and Redis are down."""
    server = FakeServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield (
        Settings(
            run_dir=tmp_path,
            worker_web_port=port,
            triton_http_port=port,
            kafka_port=free_port(),
            redis_port=free_port(),
            prometheus_port=free_port(),
        ),
        server,
    )
    server.shutdown()
    server.server_close()


def test_health_is_read_from_a_503_answer(fake: tuple[Settings, FakeServer]) -> None:
    health = worker_health(fake[0])
    assert (health.status, health.model_version, health.agents) == (
        "starting",
        None,
        {"listing_events": "init"},
    )


def test_scrape_reads_the_metrics_page(fake: tuple[Settings, FakeServer]) -> None:
    assert worker_scrape(fake[0]).sum_by("toyfuse_events_processed_total", "topic") == {"t": 5.0}


def test_models_come_from_the_repository_index_sorted(fake: tuple[Settings, FakeServer]) -> None:
    assert triton_models(fake[0]) == [
        ModelState("fusion", "2", False, "unavailable: unloaded"),
        ModelState("text_encoder", "1", True, "ready"),
    ]


def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, worker_web_port=free_port())
    with pytest.raises(Unreachable, match="nothing answers at http://127.0.0.1:"):
        worker_health(settings)


def test_snapshot_rates_come_from_two_scrapes_an_interval_apart(fake: tuple[Settings, FakeServer]) -> None:
    settings, server = fake

    snapshot = take_snapshot(settings, interval_s=0.2)

    assert server.scrapes == 2
    assert snapshot.figures is not None and snapshot.figures.interval_s >= 0.2
    assert snapshot.figures.throughput == {"t": pytest.approx(5.0 / snapshot.figures.interval_s)}
    assert snapshot.worker is not None and snapshot.worker.status == "starting"
    # the fake fails Triton's health check and canaries, yet its index still says which model is not ready
    assert [m.name for m in snapshot.models or ()] == ["fusion", "text_encoder"]
    assert "the worker is starting" in snapshot.problems
    assert "Triton model fusion is not ready (unavailable: unloaded)" in snapshot.problems


def store_settings(tmp_path: Path, redis_port: int) -> tuple[Settings, IndexSchema]:
    """Settings of the Redis at ``redis_port``, whose schema folder is the repository's with a key prefix of
    this test's own."""
    schemas = tmp_path / "schemas"
    shutil.copytree(REPO_ROOT / "schemas", schemas)
    index = schemas / "embedding_index.yaml"
    prefix = f"status{uuid.uuid4().hex[:8]}"
    index.write_text(index.read_text().replace("key_prefix: toyfuse", f"key_prefix: {prefix}"))
    settings = Settings(run_dir=tmp_path, schemas_dir=schemas, redis_port=redis_port)
    return settings, IndexSchema.from_yaml(index)


def test_the_store_probe_says_what_a_starting_worker_would_refuse(tmp_path: Path, redis_url: str) -> None:
    settings, schema = store_settings(tmp_path, urlsplit(redis_url).port or 0)
    client = redis.Redis.from_url(redis_url)
    assert store_problems(settings) == []

    dims = schema.vectors[schema.search.vector].dims
    client.execute_command("VADD", schema.vector_set_key, "VALUES", dims, *[0.5] * dims, "x", "M", 8)
    client.hset(f"{schema.key_prefix}:reviews:toy-1", "sum", b"\0" * 4)  # a single-server review aggregate
    problems = store_problems(settings)

    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{schema.vector_set_key} was built with build_m 8, not 16; Redis fixes")
    assert problems[1].startswith(f"{schema.key_prefix} holds 1 review keys of the single-server layout")
    assert problems[1].endswith("run `toyfuse store migrate-review-keys`, then start them again")
    assert client.exists(layout_key(schema)) == 0, "the probe only reads"


def test_a_redis_that_does_not_answer_is_unreachable_for_the_store_probe(tmp_path: Path) -> None:
    settings, _ = store_settings(tmp_path, free_port())
    with pytest.raises(Unreachable, match="could not be read"):
        store_problems(settings)
