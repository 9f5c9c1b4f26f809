"""Tests for stream/stack/media_server.py: the catalog media folder served by a real detached process."""

import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from stream.config import Settings
from stream.errors import PortBusyError
from stream.stack import media_server
from tests.conftest import free_port


def test_server_command_serves_the_catalog_media_folder_on_localhost(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, media_port=28123)
    assert media_server.server_command(settings) == [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "28123",
        "--directory",
        str(tmp_path.resolve() / "catalog" / "media"),
    ]


def test_media_base_url_follows_host_and_port() -> None:
    assert Settings(media_host="media", media_port=8080).media_base_url == "http://media:8080"


def test_start_serves_files_until_stopped(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, media_port=free_port())
    media_server.start(settings, print)
    try:
        (media_server.media_dir(settings) / "images").mkdir()
        (media_server.media_dir(settings) / "images" / "toy.png").write_bytes(b"png bytes")
        with urllib.request.urlopen(f"{settings.media_base_url}/images/toy.png", timeout=5) as response:
            assert response.read() == b"png bytes"
        status = media_server.status(settings)
        assert status.healthy and status.pid is not None
    finally:
        pid = media_server.stop(settings)
    assert pid == status.pid
    assert not media_server.status(settings).healthy
    assert not media_server.pid_file(settings).exists()


def test_start_refuses_a_port_held_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = int(sock.getsockname()[1])
        settings = Settings(run_dir=tmp_path, media_port=port)
        with pytest.raises(PortBusyError, match=f"port {port} \\(TOYFUSE_MEDIA_PORT\\)"):
            media_server.start(settings, print)
    assert not media_server.pid_file(settings).exists()


def test_status_of_a_stopped_server(tmp_path: Path) -> None:
    status = media_server.status(Settings(run_dir=tmp_path, media_port=9))
    assert (status.pid, status.healthy, status.detail) == (None, False, "not serving")
