"""Tests for stream/stack/triton_server.py: backend folder, environment and command line."""

import os
import sys
import sysconfig
from pathlib import Path

import pytest

from stream.config import Settings
from stream.errors import MissingToolError, SettingsError
from stream.stack import triton_server

VERSION = (sys.version_info.major, sys.version_info.minor)


def test_build_backend_dir_links_backend_and_stub_together(tmp_path: Path) -> None:
    backends = triton_server.build_backend_dir(triton_server.pytriton_dir(), tmp_path / "backends", VERSION)
    python = backends / "python"
    names = sorted(path.name for path in python.iterdir())
    assert names == ["libtriton_python.so", "triton_python_backend_stub", "triton_python_backend_utils.py"]
    assert all((python / name).resolve().is_file() for name in names)
    assert f"{VERSION[0]}.{VERSION[1]}" in (python / "triton_python_backend_stub").resolve().parts


def test_build_backend_dir_twice_is_fine(tmp_path: Path) -> None:
    triton_server.build_backend_dir(triton_server.pytriton_dir(), tmp_path, VERSION)
    triton_server.build_backend_dir(triton_server.pytriton_dir(), tmp_path, VERSION)
    assert (tmp_path / "python" / "libtriton_python.so").resolve().is_file()


def test_stub_for_an_unsupported_python_is_a_missing_tool() -> None:
    with pytest.raises(MissingToolError, match="no Python-backend stub for Python 2.7"):
        triton_server.stub_path(triton_server.pytriton_dir(), (2, 7))


def test_server_env_puts_this_interpreter_first() -> None:
    server_dir = triton_server.pytriton_dir()
    env = triton_server.server_env(
        server_dir, {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/lib", "KEEP": "1"}
    )

    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    libs = env["LD_LIBRARY_PATH"].split(os.pathsep)
    assert libs[0] == sysconfig.get_config_var("LIBDIR")
    assert Path(libs[1]).name == "nvidia_pytriton.libs" and Path(libs[1]).is_dir()
    assert libs[-1] == "/opt/lib"
    assert env["KEEP"] == "1"


def test_server_command_uses_settings_ports_on_localhost(tmp_path: Path) -> None:
    settings = Settings(
        triton_http_port=1, triton_grpc_port=2, triton_metrics_port=3, model_repository=tmp_path
    )
    command = triton_server.server_command(Path("/srv"), tmp_path / "backends", settings)
    options = dict(zip(command[1::2], command[2::2], strict=True))

    assert command[0] == "/srv/bin/tritonserver"
    assert (options["--http-port"], options["--grpc-port"], options["--metrics-port"]) == ("1", "2", "3")
    assert (
        options["--http-address"] == options["--grpc-address"] == options["--metrics-address"] == "127.0.0.1"
    )
    assert options["--model-repository"] == str(tmp_path.resolve())
    assert options["--strict-readiness"] == "true"
    assert (options["--model-control-mode"], options["--load-model"]) == ("explicit", "*")


def test_start_without_a_model_repository_names_the_setting(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, model_repository=tmp_path / "nope")
    with pytest.raises(SettingsError, match="TOYFUSE_MODEL_REPOSITORY"):
        triton_server.start(settings, print)
