"""Integration test of stream/stack: real Kafka, Redis, Triton and Prometheus started, checked and stopped."""

import asyncio
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient

from stream import stack
from stream.config import Settings
from stream.stack import kafka_server, process

pytestmark = pytest.mark.integration

IDENTITY_CONFIG = """\
name: "identity"
backend: "python"
max_batch_size: 0
input [{ name: "INPUT0", data_type: TYPE_FP32, dims: [ -1 ] }]
output [{ name: "OUTPUT0", data_type: TYPE_FP32, dims: [ -1 ] }]
instance_group [{ kind: KIND_CPU, count: 1 }]
"""
IDENTITY_MODEL = """\
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(
                [pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())]
            )
            for r in requests
        ]
"""


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on right now (held open together so they differ)."""
    with ExitStack() as stack_of_sockets:
        sockets = [stack_of_sockets.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings for a stack in a temporary run dir on free ports, serving a throwaway identity model."""
    model = tmp_path / "models" / "identity"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(IDENTITY_CONFIG)
    (model / "1" / "model.py").write_text(IDENTITY_MODEL)
    ports = free_ports(8)
    settings = Settings(
        run_dir=tmp_path / "run",
        kafka_port=ports[0],
        kafka_controller_port=ports[1],
        redis_port=ports[2],
        triton_http_port=ports[3],
        triton_grpc_port=ports[4],
        triton_metrics_port=ports[5],
        prometheus_port=ports[6],
        worker_web_port=ports[7],
        model_repository=tmp_path / "models",
    )
    yield settings
    stack.down(settings, echo=lambda line: None)


async def describe_topics(settings: Settings) -> dict[str, int]:
    """Partition count of every topic on the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{settings.kafka_port}")
    await admin.start()
    try:
        return {topic["topic"]: len(topic["partitions"]) for topic in await admin.describe_topics()}
    finally:
        await admin.close()


def test_up_status_up_again_down(settings: Settings) -> None:
    stack.up(settings)

    statuses = stack.status(settings)
    assert [(s.name, s.healthy) for s in statuses] == [
        ("kafka", True),
        ("redis", True),
        ("triton", True),
        ("prometheus", True),
    ]
    assert all(s.pid is not None and process.pid_alive(s.pid) for s in statuses)
    topics = asyncio.run(describe_topics(settings))
    assert {name: topics.get(name) for name in kafka_server.topic_names(settings)} == dict.fromkeys(
        kafka_server.topic_names(settings), settings.topic_partitions
    )
    with redis.Redis(port=settings.redis_port) as client:
        assert client.config_get("appendonly") == {"appendonly": "yes"}

    lines: list[str] = []
    stack.up(settings, echo=lines.append)
    assert [s.pid for s in stack.status(settings)] == [s.pid for s in statuses]
    assert all("already up" in line for line in lines), lines

    stack.down(settings, echo=lambda line: None)

    assert not any(process.pid_alive(s.pid) for s in statuses if s.pid is not None)
    ports = [
        settings.kafka_port,
        settings.kafka_controller_port,
        settings.redis_port,
        settings.triton_http_port,
        settings.triton_grpc_port,
        settings.triton_metrics_port,
        settings.prometheus_port,
    ]
    assert [port for port in ports if not process.port_is_free(port)] == []
    assert not list(settings.run_dir.glob("*/*.pid"))
