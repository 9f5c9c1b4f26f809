"""Tests for stream/stack/__init__.py without real servers: status and down on an idle run dir."""

import socket
from pathlib import Path

from stream import stack
from stream.config import Settings


def closed_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def idle_settings(run_dir: Path) -> Settings:
    """Settings whose ports have no servers behind them."""
    return Settings(
        run_dir=run_dir,
        kafka_port=closed_port(),
        redis_port=closed_port(),
        triton_http_port=closed_port(),
        prometheus_port=closed_port(),
        startup_timeout_s=5,
    )


def test_status_reports_all_four_servers_down(tmp_path: Path) -> None:
    statuses = stack.status(idle_settings(tmp_path))
    assert [status.name for status in statuses] == ["kafka", "redis", "triton", "prometheus"]
    assert not any(status.healthy for status in statuses)
    assert all(status.pid is None for status in statuses)


def test_down_on_an_idle_stack_removes_stale_pid_files(tmp_path: Path) -> None:
    settings = idle_settings(tmp_path)
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "redis.pid").write_text("999999999\n")
    lines: list[str] = []
    stack.down(settings, echo=lines.append)
    assert lines == [
        "worker: not running",
        "media: not running",
        "prometheus: not running",
        "triton: not running",
        "redis: not running",
        "kafka: not running",
    ]
    assert not (tmp_path / "redis" / "redis.pid").exists()


def test_down_wipe_deletes_server_folders_and_the_empty_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    for name in ("kafka", "redis", "triton", "prometheus", "worker"):
        (run_dir / name / "data").mkdir(parents=True)
    stack.down(idle_settings(run_dir), echo=lambda line: None, wipe=True)
    assert not run_dir.exists()


def test_down_wipe_keeps_files_it_did_not_create(tmp_path: Path) -> None:
    (tmp_path / "kafka" / "lib").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    stack.down(idle_settings(tmp_path), echo=lambda line: None, wipe=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_status_flags_a_healthy_server_this_run_dir_did_not_start(tmp_path: Path, redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    settings = idle_settings(tmp_path).model_copy(update={"redis_port": port})
    redis_status = stack.status(settings)[1]
    assert (redis_status.healthy, redis_status.pid) == (True, None)
    assert redis_status.detail == f"PONG; not started from {tmp_path}"
