"""ONNX Runtime against the torch networks on real listing texts and photos: same contract, same vectors."""

from pathlib import Path

import numpy as np
import torch

from stream.encoders import accuracy
from stream.encoders.export import IMAGE_ENCODER, IMAGE_INPUT, TEXT_ENCODER, onnx_file
from stream.encoders.served import encoder_runner
from stream.encoders.sessions import session_options, torch_runner
from tests.stream.encoders.conftest import Material, embed

CPU = torch.device("cpu")


def test_sessions_optimise_fully_and_keep_to_their_threads() -> None:
    import onnxruntime as ort

    options = session_options(1)
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_onnx_text_vectors_match_torch_and_stay_unit_length(material: Material, onnx_cache: Path) -> None:
    texts = material.texts[:64]
    served = embed(encoder_runner(TEXT_ENCODER, CPU, onnx_cache, "fp32", 0), texts)
    reference = embed(torch_runner(TEXT_ENCODER.network(), CPU), texts)

    assert served.shape == (64, 384) and served.dtype == np.float32
    assert accuracy.cosines(reference, served).min() >= 0.999
    assert np.allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)


def test_onnx_text_vectors_do_not_depend_on_the_batch_they_came_in(
    material: Material, onnx_cache: Path
) -> None:
    runner = encoder_runner(TEXT_ENCODER, CPU, onnx_cache, "fp32", 0)
    together = embed(runner, material.texts[:8])
    alone = np.concatenate([embed(runner, [text]) for text in material.texts[:8]])
    assert accuracy.cosines(together, alone).min() >= 0.9999


def test_onnx_image_features_match_torch_and_stay_unnormalised(material: Material, onnx_cache: Path) -> None:
    photos = material.photos[:16]
    served = encoder_runner(IMAGE_ENCODER, CPU, onnx_cache, "fp32", 0)({IMAGE_INPUT: photos})
    reference = torch_runner(IMAGE_ENCODER.network(), CPU)({IMAGE_INPUT: photos})

    assert served.shape == (16, 1280) and served.dtype == np.float32
    assert accuracy.cosines(reference, served).min() >= 0.999
    # The contract wants raw features: the model must not normalise them.
    assert np.abs(np.linalg.norm(served, axis=1) - 1.0).min() > 0.1


def test_the_cache_is_reused_across_sessions(onnx_cache: Path) -> None:
    first = onnx_file(onnx_cache, IMAGE_ENCODER, "fp32")
    modified = first.stat().st_mtime_ns
    assert onnx_file(onnx_cache, IMAGE_ENCODER, "fp32") == first and first.stat().st_mtime_ns == modified
