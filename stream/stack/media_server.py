"""The sample catalog's media folder served over HTTP as a detached process (used by the demo and the tests)."""

import sys
from collections.abc import Callable
from pathlib import Path

from stream.config import Settings
from stream.stack import process
from stream.stack.process import LOCALHOST, Launch, ServerStatus

NAME = "media"
FILES = process.ServerFiles(NAME)
folder, log_file, pid_file, stop = FILES.folder, FILES.log_file, FILES.pid_file, FILES.stop


def media_dir(settings: Settings) -> Path:
    """Return the folder served: the ``media/`` folder of the catalog under the run dir."""
    return settings.run_dir.resolve() / "catalog" / "media"


def server_command(settings: Settings) -> list[str]:
    """Return the command line of Python's static file server, bound to 127.0.0.1."""
    return [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        LOCALHOST,
        str(settings.media_port),
        "--directory",
        str(media_dir(settings)),
    ]


def serves(settings: Settings) -> bool:
    """Return whether ``GET /`` on the media port answers 200."""
    return process.http_ok(f"http://{LOCALHOST}:{settings.media_port}/")


def start(settings: Settings, echo: Callable[[str], None]) -> None:
    """Start the media server detached and wait until it answers.

    The media folder is created if missing, so the server can start before the catalog is generated.

    Raises:
        PortBusyError: The media port is taken.
        ServerStartError: The server exited or did not answer in time.
    """
    process.ensure_ports_free(NAME, {"media_port": settings.media_port})
    media_dir(settings).mkdir(parents=True, exist_ok=True)
    folder(settings).mkdir(parents=True, exist_ok=True)
    launch = Launch(NAME, server_command(settings), pid_file(settings), log_file(settings), folder(settings))
    proc = process.spawn(launch)
    process.wait_ready(proc, launch, lambda: serves(settings), settings.startup_timeout_s)
    echo(
        f"media: serving {media_dir(settings)} at {settings.media_base_url} (pid {proc.pid}, log {launch.log_file})"
    )


def status(settings: Settings) -> ServerStatus:
    """Return the server's pid (if we started it) and whether it answers."""
    pid = FILES.running_pid(settings)
    healthy = serves(settings)
    detail = f"serving {media_dir(settings)}" if healthy else "not serving"
    return ServerStatus(NAME, pid, f"{LOCALHOST}:{settings.media_port}", healthy, detail)
