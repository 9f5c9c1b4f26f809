"""Triton Inference Server 2.51 with its Python backend, from the ``nvidia-pytriton`` wheel."""

import importlib.util
import os
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

from tritonclient.utils import InferenceServerException

from stream.config import Settings
from stream.errors import MissingToolError, SettingsError
from stream.inference.canaries import unhealthy_models
from stream.stack import process
from stream.stack.process import LOCALHOST, Launch, ServerStatus

NAME = "triton"
FILES = process.ServerFiles(NAME)
folder, log_file, pid_file, stop = FILES.folder, FILES.log_file, FILES.pid_file, FILES.stop
BACKEND_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")
STUB = "triton_python_backend_stub"
# Every model loaded at start, and reloadable through the repository API: that is how the worker brings
# back a model whose Python-backend stub died (stream.inference.repair). docker-compose.yml passes the same.
MODEL_CONTROL = ("--model-control-mode", "explicit", "--load-model", "*")


def pytriton_dir() -> Path:
    """Return the ``pytriton/tritonserver`` folder of the installed wheel, without importing pytriton.

    Raises:
        MissingToolError: The wheel is not installed.
    """
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise MissingToolError(
            "triton needs the `nvidia-pytriton` wheel (it ships tritonserver); "
            "run `pip install nvidia-pytriton==0.7.0`"
        )
    return Path(spec.submodule_search_locations[0]) / "tritonserver"


def stub_path(server_dir: Path, version: tuple[int, int]) -> Path:
    """Return the Python-backend stub built for Python ``version``.

    Raises:
        MissingToolError: The wheel has no stub for that version.
    """
    stub = server_dir / "python_backend_stubs" / f"{version[0]}.{version[1]}" / STUB
    if not stub.is_file():
        raise MissingToolError(
            f"{stub} is missing: nvidia-pytriton has no Python-backend stub for Python "
            f"{version[0]}.{version[1]}; run the stack from a Python 3.10-3.12 virtualenv"
        )
    return stub


def build_backend_dir(server_dir: Path, target: Path, version: tuple[int, int]) -> Path:
    """Link the Python backend and the stub for ``version`` into ``target/python/``; return ``target``.

    Triton looks for the stub next to ``libtriton_python.so``, and the wheel keeps them apart.
    """
    python = target / "python"
    python.mkdir(parents=True, exist_ok=True)
    sources = [server_dir / "backends" / "python" / name for name in BACKEND_FILES]
    for source in [*sources, stub_path(server_dir, version)]:
        link = python / source.name
        link.unlink(missing_ok=True)
        link.symlink_to(source)
    return target


def server_env(server_dir: Path, base: dict[str, str]) -> dict[str, str]:
    """Return the environment for tritonserver and its Python stubs.

    The stub embeds Python with the environment ignored (``PYTHONPATH`` has no effect); it finds its
    ``sys.prefix`` through ``python3`` on ``PATH``, so the running interpreter's ``bin/`` goes first and the
    models import this virtualenv's packages (torch, transformers, numpy and the editable ``stream``).
    The interpreter's own libpython goes first on ``LD_LIBRARY_PATH``: another libpython of the same
    version elsewhere on the machine breaks imports in the stub (``undefined symbol: _PyModule_Add``).

    Args:
        server_dir: The wheel's ``tritonserver`` folder.
        base: Environment to extend (the caller's).

    Returns:
        A new environment mapping.
    """
    libs = [str(sysconfig.get_config_var("LIBDIR")), str(server_dir.parent.parent / "nvidia_pytriton.libs")]
    return {
        **base,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), *filter(None, [base.get("PATH")])]),
        "LD_LIBRARY_PATH": os.pathsep.join([*libs, *filter(None, [base.get("LD_LIBRARY_PATH")])]),
    }


def server_command(server_dir: Path, backends: Path, settings: Settings) -> list[str]:
    """Return the tritonserver command line, every endpoint bound to 127.0.0.1."""
    return [
        str(server_dir / "bin" / "tritonserver"),
        "--model-repository",
        str(settings.model_repository.resolve()),
        "--backend-directory",
        str(backends),
        "--http-address",
        LOCALHOST,
        "--http-port",
        str(settings.triton_http_port),
        "--grpc-address",
        LOCALHOST,
        "--grpc-port",
        str(settings.triton_grpc_port),
        "--metrics-address",
        LOCALHOST,
        "--metrics-port",
        str(settings.triton_metrics_port),
        *MODEL_CONTROL,
        "--strict-readiness",
        "true",
        "--exit-on-error",
        "true",
        "--log-verbose",
        "0",
    ]


def is_ready(settings: Settings) -> bool:
    """Return whether ``GET /v2/health/ready`` answers 200 (server up and every model loaded)."""
    return process.http_ok(f"http://{LOCALHOST}:{settings.triton_http_port}/v2/health/ready")


def start(settings: Settings, echo: Callable[[str], None]) -> None:
    """Build the backend folder, start tritonserver and wait until it and its models are ready.

    Raises:
        MissingToolError: The ``nvidia-pytriton`` wheel or a stub for this Python is missing.
        SettingsError: ``model_repository`` does not exist.
        PortBusyError: A Triton port is taken.
        ServerStartError: Triton died (e.g. a model failed to load) or was not ready in time.
    """
    if not settings.model_repository.is_dir():
        raise SettingsError(
            f"triton model repository {settings.model_repository} does not exist; "
            f"point {process.setting_env_var('model_repository')} at a folder of models"
        )
    server_dir = pytriton_dir()
    ports = {
        f"triton_{kind}_port": getattr(settings, f"triton_{kind}_port")
        for kind in ("http", "grpc", "metrics")
    }
    process.ensure_ports_free(NAME, ports)
    version = (sys.version_info.major, sys.version_info.minor)
    backends = build_backend_dir(server_dir, folder(settings) / "backends", version)
    launch = Launch(
        NAME,
        server_command(server_dir, backends, settings),
        pid_file(settings),
        log_file(settings),
        folder(settings),
        server_env(server_dir, dict(os.environ)),
    )
    proc = process.spawn(launch)
    process.wait_ready(proc, launch, lambda: is_ready(settings), settings.startup_timeout_s)
    echo(
        f"triton: up at http://{LOCALHOST}:{settings.triton_http_port} (pid {proc.pid}, log {launch.log_file})"
    )


def status(settings: Settings) -> ServerStatus:
    """Return the server's pid (if we started it) and whether it is ready and every model answers its canary.

    A model whose Python-backend stub died still counts as ready to Triton; its canary fails, so
    ``stack up`` restarts the server (a running worker reloads such a model sooner, without a restart).
    """
    pid = FILES.running_pid(settings)
    address = f"{LOCALHOST}:{settings.triton_http_port}"
    if not is_ready(settings):
        return ServerStatus(NAME, pid, address, False, "not ready")
    try:
        problems = unhealthy_models(address)
    except (InferenceServerException, OSError) as exc:
        return ServerStatus(NAME, pid, address, False, f"canaries could not run: {exc}")
    detail = "; ".join(f"model {name} fails its canary: {error}" for name, error in sorted(problems.items()))
    return ServerStatus(NAME, pid, address, not problems, detail or "ready, every model answers its canary")
