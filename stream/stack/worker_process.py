"""The Faust worker as a detached process of the local stack (used by the demo and the tests)."""

import os
import sys
from collections.abc import Callable
from pathlib import Path

from stream.config import Settings
from stream.stack import process
from stream.stack.process import LOCALHOST, Launch, ServerStatus

NAME = "worker"
FILES = process.ServerFiles(NAME)
folder, log_file, pid_file, stop = FILES.folder, FILES.log_file, FILES.pid_file, FILES.stop


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that rebuild exactly these settings in a child process (paths made absolute)."""
    return {
        process.setting_env_var(name): str(value.resolve() if isinstance(value, Path) else value)
        for name, value in settings.model_dump().items()
    }


def health_url(settings: Settings) -> str:
    """The worker's health endpoint: 200 once its pipelines are connected and every agent runs."""
    return f"http://{LOCALHOST}:{settings.worker_web_port}/health"


def is_ready(settings: Settings) -> bool:
    """Return whether the worker reports itself ready."""
    return process.http_ok(health_url(settings))


def start(settings: Settings, echo: Callable[[str], None]) -> None:
    """Start ``toyfuse worker`` detached and wait until its pipeline is connected to Triton and Redis.

    Raises:
        PortBusyError: The worker's web port is taken.
        ServerStartError: The worker exited or did not get ready in time.
    """
    process.ensure_ports_free(NAME, {"worker_web_port": settings.worker_web_port})
    log = log_file(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "stream.cli", "worker"]
    launch = Launch(
        NAME, command, pid_file(settings), log, folder(settings), {**os.environ, **settings_env(settings)}
    )
    proc = process.spawn(launch)
    process.wait_ready(proc, launch, lambda: is_ready(settings), settings.startup_timeout_s)
    echo(f"worker: up, consuming {settings.listings_topic} (pid {proc.pid}, log {log})")


def status(settings: Settings) -> ServerStatus:
    """Return the worker's pid (if we started it) and whether its health endpoint says ready."""
    pid = FILES.running_pid(settings)
    healthy = pid is not None and is_ready(settings)
    detail = "consuming" if healthy else "not running"
    return ServerStatus(NAME, pid, f"{LOCALHOST}:{settings.worker_web_port}", healthy, detail)
