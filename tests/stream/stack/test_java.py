"""Tests for stream/stack/java.py: Java version checks and the Maven lib marker."""

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from stream.errors import MissingToolError, ServerStartError
from stream.stack import java


def fake_tool(folder: Path, name: str, stderr: str) -> None:
    """Put an executable ``name`` in ``folder`` that prints ``stderr`` to stderr."""
    tool = folder / name
    tool.write_text(f"#!/bin/sh\necho '{stderr}' >&2\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_402"', 8),
        ("no version here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert java.parse_java_major(output) == major


def test_check_java_rejects_java_11(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, "java", 'openjdk version "11.0.22" 2024-01-16')
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match=r"needs Java 17\+.*reports 11.*openjdk-17"):
        java.check_java()


def test_check_java_accepts_java_17(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, "java", 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert java.check_java() == str(tmp_path / "java")


@pytest.mark.parametrize(
    ("check", "hint"), [(java.check_java, "openjdk-17"), (java.check_mvn, "install -y maven")]
)
def test_missing_tools_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: Callable[[], str], hint: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match=hint):
        check()


def test_lib_is_complete_only_for_the_same_properties(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    assert not java.lib_is_complete(lib, {"kafka.version": "4.3.1"})
    lib.mkdir()
    (lib / java.MARKER).write_text(java.lib_stamp({"kafka.version": "4.3.1"}))
    assert java.lib_is_complete(lib, {"kafka.version": "4.3.1"})
    assert not java.lib_is_complete(lib, {"kafka.version": "4.4.0"})


def test_assemble_lib_reports_a_maven_failure_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "mvn", "[ERROR] Could not resolve dependencies")
    (bin_dir / "mvn").write_text((bin_dir / "mvn").read_text() + "exit 1\n")
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ["PATH"])
    log = tmp_path / "logs" / "mvn.log"
    with pytest.raises(
        ServerStartError, match=r"(?s)mvn\) failed with code 1.*Could not resolve dependencies"
    ) as caught:
        java.assemble_lib(b"<project/>", tmp_path / "lib", {"kafka.version": "4.3.1"}, log)
    assert str(log) in str(caught.value)
    assert not (tmp_path / "lib" / java.MARKER).exists()
