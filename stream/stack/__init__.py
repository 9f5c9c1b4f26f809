"""Local stack manager: Kafka, Redis, Triton and Prometheus as detached processes under ``settings.run_dir``.

``up`` starts what is not already healthy, ``down`` stops everything it started, ``status`` reports.
Data (Kafka log segments, the Redis append-only file, Prometheus' samples) survives ``down``;
``down(wipe=True)`` deletes it.
"""

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from stream.config import Settings
from stream.stack import (
    kafka_server,
    media_server,
    prometheus_server,
    redis_server,
    triton_server,
    worker_process,
)
from stream.stack.process import ServerStatus

__all__ = ["ServerStatus", "down", "status", "up"]


class _Server(Protocol):
    NAME: str

    def folder(self, settings: Settings) -> Path: ...

    def start(self, settings: Settings, echo: Callable[[str], None]) -> None: ...

    def status(self, settings: Settings) -> ServerStatus: ...

    def stop(self, settings: Settings) -> int | None: ...


_SERVERS: tuple[_Server, ...] = (kafka_server, redis_server, triton_server, prometheus_server)


def up(settings: Settings, echo: Callable[[str], None] = print) -> None:
    """Start Kafka, Redis, Triton and Prometheus unless already healthy, then create the Kafka topics.

    Args:
        settings: Ports, run dir, model repository and topics.
        echo: Receives one line per action.

    Raises:
        MissingToolError: java, mvn, prometheus or a server wheel is missing.
        PortBusyError: A port is held by a process this stack did not start.
        ServerStartError: A server exited or was not ready within ``startup_timeout_s``.
    """
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    for server in _SERVERS:
        current = server.status(settings)
        if current.healthy and current.pid is not None:
            echo(f"{current.name}: already up at {current.address} ({current.detail})")
            continue
        if current.pid is not None:
            echo(f"{current.name}: pid {current.pid} is {current.detail}; restarting it")
            server.stop(settings)
        server.start(settings, echo)
    kafka_server.ensure_topics(settings, echo)


def down(settings: Settings, echo: Callable[[str], None] = print, wipe: bool = False) -> None:
    """Stop the worker, the media server and every server this run dir started (SIGTERM, then SIGKILL); remove their pid files.

    Args:
        settings: Run dir of the stack.
        echo: Receives one line per action.
        wipe: Also delete the servers' and worker's folders (data, logs, downloaded jars) and the run dir if empty.
    """
    processes: tuple[_Server, ...] = (worker_process, media_server, *reversed(_SERVERS))
    for server in processes:
        pid = server.stop(settings)
        echo(f"{server.NAME}: stopped pid {pid}" if pid is not None else f"{server.NAME}: not running")
    if wipe:
        for server in processes:
            shutil.rmtree(server.folder(settings), ignore_errors=True)
        if settings.run_dir.is_dir() and not any(settings.run_dir.iterdir()):
            settings.run_dir.rmdir()
        echo(f"wiped {settings.run_dir}")


def status(settings: Settings) -> list[ServerStatus]:
    """Return the state of Kafka, Redis, Triton and Prometheus, in start order.

    A server that answers but has no live pid file here was not started from this run dir; its detail
    says so, and ``up`` will not adopt it.
    """
    statuses = [server.status(settings) for server in _SERVERS]
    return [
        replace(s, detail=f"{s.detail}; not started from {settings.run_dir}")
        if s.healthy and s.pid is None
        else s
        for s in statuses
    ]
