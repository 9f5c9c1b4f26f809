"""Tests for stream/status/command.py with nothing running: every section shows, nothing raises, exit 1."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.config import Settings
from stream.status.command import command
from tests.conftest import free_port
from tests.stream.status.test_render import KEYS, SECTIONS


@pytest.fixture
def nothing_running(tmp_path: Path) -> Settings:
    """Settings whose every port has nothing listening on it."""
    return Settings(
        run_dir=tmp_path / "run",
        kafka_port=free_port(),
        redis_port=free_port(),
        triton_http_port=free_port(),
        worker_web_port=free_port(),
        prometheus_port=free_port(),
    )


def test_every_server_down_shows_every_section_and_exits_1(nothing_running: Settings) -> None:
    result = CliRunner().invoke(command, ["--interval", "0.1"], obj=nothing_running)

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert all(any(line.startswith(section) for line in lines) for section in SECTIONS)
    for server in ("kafka", "redis", "triton", "worker"):
        assert any(line.split()[:2] == [server, "DOWN"] for line in lines), server


def test_json_with_every_server_down_says_so_and_exits_1(nothing_running: Settings) -> None:
    result = CliRunner().invoke(command, ["--json", "--interval", "0.1"], obj=nothing_running)

    assert result.exit_code == 1, result.output
    found = json.loads(result.output)
    assert set(found) == KEYS
    assert found["healthy"] is False
    assert {name for name, server in found["servers"].items() if not server["up"]} >= {
        "kafka",
        "redis",
        "triton",
        "worker",
    }
    assert len(found["problems"]) == 4  # kafka, redis, triton, worker: Prometheus is optional
