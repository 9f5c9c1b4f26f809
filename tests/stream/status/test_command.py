"""Tests for stream/status/command.py: with nothing running every section shows, nothing raises, exit 1;
the --watch loop."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.config import Settings
from stream.status.command import command, refresh
from stream.status.snapshot import Snapshot
from tests.conftest import free_port
from tests.stream.status.conftest import SnapshotFactory
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


def test_refresh_shows_each_snapshot_until_ctrl_c_and_returns_the_last(
    snapshot_factory: SnapshotFactory,
) -> None:
    snapshots = iter([snapshot_factory(unread={"models": str(n)}) for n in range(3)])
    shown: list[Snapshot] = []
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            raise KeyboardInterrupt

    last = refresh(lambda: next(snapshots), shown.append, 2.0, sleep)

    assert [s.unread["models"] for s in shown] == ["0", "1", "2"]
    assert last is shown[-1]
    assert pauses == [2.0, 2.0, 2.0]
