"""The int8 text encoder: what it keeps in fp32, and the check that stands between its file and Triton."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from stream.catalog.generate import generate_catalog
from stream.config import REPO_ROOT
from stream.contracts.events import EventDecoder
from stream.encoders import accuracy
from stream.encoders.exceptions import AccuracyCheckFailed
from stream.encoders.export import TEXT_ENCODER, onnx_file
from stream.encoders.int8 import CALIBRATION, calibration_texts, check_text_int8, kept_in_fp32
from stream.encoders.sessions import onnx_runner
from stream.features.text import text_of
from stream.train.catalog_io import read_catalog
from tests.stream.encoders.conftest import Material, embed


def test_int8_keeps_the_first_layer_and_the_feed_forward_outputs_in_fp32(onnx_cache: Path) -> None:
    kept = kept_in_fp32(onnx_file(onnx_cache, TEXT_ENCODER, "fp32"))
    layers = [name.split("/")[3] for name in kept]
    # Layer 0: query, key, value, two attention products, attention output, intermediate, output.
    assert layers == ["layer.0"] * 8 + [f"layer.{index}" for index in range(1, 6)]


def test_the_calibration_texts_are_what_the_worker_composes_for_a_generated_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"families": 30, "listings": 90}.items():  # a catalog with media renders slowly
        monkeypatch.setitem(CALIBRATION, name, value)
    generate_catalog(tmp_path, **CALIBRATION, reviews=0, media_base_url="http://127.0.0.1:9")
    records = read_catalog(tmp_path, EventDecoder(REPO_ROOT / "schemas"))
    texts, products = calibration_texts()
    assert texts == [text_of(event) for event in records.listings]
    assert products == records.families
    assert any("玩具" in text for text in texts) and len(set(products)) == CALIBRATION["families"]


def test_int8_passes_on_listing_texts_it_was_not_checked_on(material: Material, onnx_cache: Path) -> None:
    fp32 = embed(onnx_runner(onnx_file(onnx_cache, TEXT_ENCODER, "fp32"), 0), material.texts)
    int8 = embed(onnx_runner(onnx_file(onnx_cache, TEXT_ENCODER, "int8"), 0), material.texts)
    report = accuracy.check(accuracy.compare(fp32, int8, material.products), "int8 text_encoder")
    assert report.reference_recall > 0.5  # the material has products to find


def test_an_int8_file_that_fails_its_check_is_never_cached(tmp_path: Path, onnx_cache: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def every_matmul(fp32: Path, path: Path) -> None:  # no layer kept in fp32: cosines down to ~0.90
        quantize_dynamic(fp32, path, weight_type=QuantType.QInt8)
        check_text_int8(fp32, path)

    exported = onnx_file(onnx_cache, TEXT_ENCODER, "fp32")
    for made in (exported, exported.with_suffix(".json")):  # the fp32 export is shared; int8 is built here
        (tmp_path / made.name).write_bytes(made.read_bytes())
    naive = replace(TEXT_ENCODER, quantize=every_matmul)
    with pytest.raises(
        AccuracyCheckFailed, match="int8 text_encoder fails its accuracy check: item .* cosine"
    ):
        onnx_file(tmp_path, naive, "int8")
    assert not list(tmp_path.glob("*int8*")) and not list(tmp_path.glob(".*partial"))


def test_the_check_needs_neither_pillow_nor_pyav_which_the_triton_image_lacks() -> None:
    probe = (
        "import sys; import stream.encoders.served; from stream.encoders.int8 import calibration_texts; "
        "calibration_texts(); print(sorted(name for name in ('av', 'PIL') if name in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert found.stdout.strip() == "[]", found.stderr
