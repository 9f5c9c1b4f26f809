"""Detached server processes: pid files, port checks, readiness waits and shutdown."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stream.config import Settings
from stream.errors import PortBusyError, ServerStartError

LOCALHOST = "127.0.0.1"
STOP_GRACE_S = 30.0
POLL_INTERVAL_S = 0.2
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class ServerStatus:
    """What ``toyfuse stack status`` reports for one server."""

    name: str
    pid: int | None
    address: str
    healthy: bool
    detail: str


@dataclass(frozen=True)
class Launch:
    """A server process to start: command, environment and where its pid and log go."""

    name: str
    command: list[str]
    pid_file: Path
    log_file: Path
    cwd: Path
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class ServerFiles:
    """Where one managed process keeps its files: ``<run_dir>/<name>/`` with its log and pid file."""

    name: str
    log_name: str = ""  # path of the log inside the folder; default ``<name>.log``

    def folder(self, settings: Settings) -> Path:
        """The process's folder under the run dir (also its working directory)."""
        return settings.run_dir.resolve() / self.name

    def log_file(self, settings: Settings) -> Path:
        """The process's log file."""
        return self.folder(settings) / (self.log_name or f"{self.name}.log")

    def pid_file(self, settings: Settings) -> Path:
        """The process's pid file."""
        return self.folder(settings) / f"{self.name}.pid"

    def running_pid(self, settings: Settings) -> int | None:
        """The pid of the process this run dir started, if it still runs."""
        return running_pid(self.pid_file(settings), self.folder(settings))

    def stop(self, settings: Settings) -> int | None:
        """Stop the process this run dir started (if running); return its pid."""
        return stop_server(self.pid_file(settings), self.folder(settings))


def setting_env_var(field: str) -> str:
    """Return the environment variable that overrides a ``Settings`` field, e.g. ``TOYFUSE_KAFKA_PORT``."""
    return f"TOYFUSE_{field.upper()}"


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """Return whether ``GET url`` answers 200 within ``timeout_s`` (False on any connection error)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


TCP_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket


def listening_sockets(port: int) -> set[str]:
    """Return the inodes of TCP sockets (IPv4 or IPv6) listening on ``port``, from ``/proc/net/tcp{,6}``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def socket_owners(inodes: set[str]) -> list[int]:
    """Return the pids holding any of the socket ``inodes`` (those this user may inspect)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                owners.append(int(proc.name))
        except OSError:
            continue
    return sorted(owners)


def port_is_free(port: int) -> bool:
    """Return whether nothing listens on ``port``.

    Connections a stopped server left behind (``TIME_WAIT``, ``FIN_WAIT2``) do not count: they hold the
    port against a plain ``bind`` for up to a minute, yet the server binds it again with its own
    socket options.
    """
    return not listening_sockets(port)


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = LOCALHOST, timeout_s: float = 1.0) -> bool:
    """Return whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def ensure_ports_free(name: str, ports: dict[str, int]) -> None:
    """Check that every port a server needs is free.

    Args:
        name: Server name, for the message.
        ports: ``Settings`` field name to port number, e.g. ``{"kafka_port": 19092}``.

    Raises:
        PortBusyError: A port is taken; the message names the setting that moves it.
    """
    for field, port in ports.items():
        listeners = listening_sockets(port)
        if listeners:
            env = setting_env_var(field)
            owners = socket_owners(listeners)
            holder = f"pid {', '.join(map(str, owners))}" if owners else "a process this stack did not start"
            raise PortBusyError(
                f"{name} cannot start: port {port} ({env}) is held by {holder}; "
                f"stop that process (`ss -ltnp 'sport = :{port}'` shows it) or move this server with "
                f"{env}=<free port>"
            )


def read_pid(pid_file: Path) -> int | None:
    """Return the pid stored in ``pid_file``, or None when the file is missing or garbled."""
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    """Store ``pid`` in ``pid_file``, creating its folder."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def pid_alive(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie (reaping it if it is our child)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_in_folder(pid: int, folder: Path) -> bool:
    """Return whether the working directory of ``pid`` lies in ``folder`` (guards against reused pids).

    Servers run with their own folder as working directory (Redis moves into its ``data/``); the command
    line is no guide, since Redis rewrites its process title.
    """
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd.is_relative_to(folder)


def running_pid(pid_file: Path, folder: Path) -> int | None:
    """Return the pid from ``pid_file`` if that process still runs and is the one we started in ``folder``."""
    pid = read_pid(pid_file)
    if pid is None or not pid_alive(pid) or not process_in_folder(pid, folder):
        return None
    return pid


def spawn(launch: Launch) -> subprocess.Popen[bytes]:
    """Start ``launch.command`` in its own session, output appended to its log, and write its pid file."""
    launch.log_file.parent.mkdir(parents=True, exist_ok=True)
    with launch.log_file.open("ab") as log:
        proc = subprocess.Popen(
            launch.command,
            cwd=launch.cwd,
            env=launch.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    write_pid(launch.pid_file, proc.pid)
    return proc


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``log_file`` (empty when it does not exist)."""
    try:
        text = log_file.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_failure(name: str, log_file: Path, what: str) -> ServerStartError:
    """Build the ``ServerStartError`` for a failed start, quoting the end of the server's log."""
    return ServerStartError(
        f"{name} {what}; read {log_file} for the cause. Last log lines:\n{log_tail(log_file)}"
    )


def wait_ready(
    proc: subprocess.Popen[bytes], launch: Launch, ready: Callable[[], bool], timeout_s: float
) -> None:
    """Poll ``ready`` until it returns True; stop the process and raise if it dies or times out.

    Args:
        proc: The process started by ``spawn``.
        launch: What was launched (name, log file, pid file).
        ready: Readiness probe; must return quickly.
        timeout_s: Longest wait, from ``Settings.startup_timeout_s``.

    Raises:
        ServerStartError: The process exited, or ``ready`` never returned True in time.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            _kill_group(proc.pid)
            launch.pid_file.unlink(missing_ok=True)
            raise start_failure(launch.name, launch.log_file, f"exited with code {code} during start-up")
        if ready():
            return
        time.sleep(POLL_INTERVAL_S)
    stop(proc.pid, launch.pid_file)
    raise start_failure(
        launch.name,
        launch.log_file,
        f"was not ready within {timeout_s:g} s ({setting_env_var('startup_timeout_s')}) and was stopped",
    )


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(pid: int, pid_file: Path, grace_s: float = STOP_GRACE_S) -> None:
    """Stop a server we spawned and remove its pid file.

    SIGTERM goes to the server alone so that it shuts down its own helpers (Triton's Python stubs);
    after ``grace_s`` or once it is gone, SIGKILL goes to its whole process group, so nothing it
    started outlives it.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _wait_gone(pid, grace_s)
    _kill_group(pid)
    _wait_gone(pid, grace_s)
    pid_file.unlink(missing_ok=True)


def stop_server(pid_file: Path, folder: Path) -> int | None:
    """Stop the server recorded in ``pid_file`` if it still runs; remove the pid file; return the pid stopped."""
    pid = running_pid(pid_file, folder)
    if pid is not None:
        stop(pid, pid_file)
    pid_file.unlink(missing_ok=True)
    return pid
