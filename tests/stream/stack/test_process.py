"""Tests for stream/stack/process.py: pid files, port checks, spawning, readiness and stopping."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.errors import PortBusyError, ServerStartError
from stream.stack import process
from stream.stack.process import Launch


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port held by a real listening socket for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def sleeper(tmp_path: Path, script: str = "import time; time.sleep(600)") -> Launch:
    """A Launch of a Python process that runs ``script`` in ``tmp_path``."""
    return Launch("sleeper", [sys.executable, "-c", script], tmp_path / "s.pid", tmp_path / "s.log", tmp_path)


def test_setting_env_var_uses_the_settings_prefix() -> None:
    assert process.setting_env_var("kafka_port") == "TOYFUSE_KAFKA_PORT"


def test_port_is_free_sees_a_listening_socket(listening_port: int) -> None:
    assert not process.port_is_free(listening_port)
    assert process.port_is_open(listening_port)


def test_port_is_free_after_the_socket_closes() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert process.port_is_free(port)
    assert not process.port_is_open(port)


def test_port_is_free_sees_an_ipv6_listener() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::", 0))
        sock.listen()
        assert not process.port_is_free(int(sock.getsockname()[1]))


def test_a_connection_left_in_time_wait_by_a_stopped_server_does_not_hold_its_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server closes first, so its side of the connection waits in TIME_WAIT
            client.recv(1)
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the old bind probe saw
    assert process.port_is_free(port)


def test_ensure_ports_free_names_the_port_and_its_setting(listening_port: int) -> None:
    with pytest.raises(PortBusyError) as caught:
        process.ensure_ports_free("redis", {"redis_port": listening_port})
    message = str(caught.value)
    assert f"port {listening_port}" in message
    assert "TOYFUSE_REDIS_PORT" in message
    assert f"pid {os.getpid()}" in message
    assert message.startswith("redis cannot start")


def test_pid_file_round_trip(tmp_path: Path) -> None:
    pid_file = tmp_path / "sub" / "x.pid"
    process.write_pid(pid_file, 4242)
    assert process.read_pid(pid_file) == 4242


@pytest.mark.parametrize("content", [None, "", "not-a-pid\n"])
def test_read_pid_of_missing_or_garbled_file_is_none(tmp_path: Path, content: str | None) -> None:
    pid_file = tmp_path / "x.pid"
    if content is not None:
        pid_file.write_text(content)
    assert process.read_pid(pid_file) is None


def test_pid_alive_for_a_live_process() -> None:
    assert process.pid_alive(os.getpid())


def test_pid_alive_is_false_for_an_exited_unreaped_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert not process.pid_alive(child.pid)


def test_running_pid_ignores_a_process_outside_the_folder(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    process.write_pid(pid_file, os.getpid())
    assert process.running_pid(pid_file, tmp_path / "elsewhere") is None
    assert process.running_pid(pid_file, Path.cwd()) == os.getpid()


def test_spawn_then_stop_server_kills_the_whole_group(tmp_path: Path) -> None:
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"
    launch = sleeper(tmp_path, script)
    proc = process.spawn(launch)
    assert process.read_pid(launch.pid_file) == proc.pid
    assert os.getpgid(proc.pid) == proc.pid

    assert process.stop_server(launch.pid_file, tmp_path) == proc.pid

    assert not process.pid_alive(proc.pid)
    assert not launch.pid_file.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


def test_stop_server_without_a_running_server_removes_a_stale_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("999999999\n")
    assert process.stop_server(pid_file, tmp_path) is None
    assert not pid_file.exists()


def test_wait_ready_returns_once_ready(tmp_path: Path) -> None:
    launch = sleeper(tmp_path)
    proc = process.spawn(launch)
    try:
        process.wait_ready(proc, launch, lambda: True, timeout_s=60)
        assert proc.poll() is None
    finally:
        process.stop(proc.pid, launch.pid_file)


def test_wait_ready_reports_an_early_exit_with_the_log_tail(tmp_path: Path) -> None:
    script = "import sys; [print(f'line {i}') for i in range(30)]; sys.exit(3)"
    launch = sleeper(tmp_path, script)
    proc = process.spawn(launch)
    with pytest.raises(ServerStartError) as caught:
        process.wait_ready(proc, launch, lambda: False, timeout_s=60)
    message = str(caught.value)
    assert "exited with code 3" in message
    assert str(launch.log_file) in message
    assert "line 29" in message and "line 9\n" not in message
    assert not launch.pid_file.exists()


def test_wait_ready_stops_a_server_that_never_gets_ready(tmp_path: Path) -> None:
    launch = sleeper(tmp_path)
    proc = process.spawn(launch)
    with pytest.raises(ServerStartError, match=r"not ready within 0.5 s \(TOYFUSE_STARTUP_TIMEOUT_S\)"):
        process.wait_ready(proc, launch, lambda: False, timeout_s=0.5)
    assert not process.pid_alive(proc.pid)
    assert not launch.pid_file.exists()


def test_log_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"{i}\n" for i in range(50)))
    assert process.log_tail(log, 3) == "47\n48\n49"
    assert process.log_tail(tmp_path / "missing.log") == ""
