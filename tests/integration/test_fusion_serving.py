"""The exported fusion and video_pooling models served by a real Triton reproduce the trained network."""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from safetensors import safe_open
from tritonclient.grpc import InferenceServerClient, InferInput, InferRequestedOutput

from stream.config import REPO_ROOT, Settings
from stream.model.loading import WEIGHTS, load_exported
from stream.stack import triton_server
from tests.conftest import free_port

MODELS = ("fusion", "video_pooling")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InferenceServerClient, Settings]]:
    """A throwaway Triton serving only the shipped fusion and video_pooling models."""
    folder = tmp_path_factory.mktemp("fusion-triton")
    (folder / "models").mkdir()
    for name in MODELS:
        (folder / "models" / name).symlink_to(REPO_ROOT / "triton_models" / name)
    settings = Settings(
        run_dir=folder / "run",
        model_repository=folder / "models",
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
    )
    triton_server.start(settings, print)
    try:
        with InferenceServerClient(settings.triton_grpc_url) as client:
            yield client, settings
    finally:
        triton_server.stop(settings)


def _input(name: str, array: NDArray[Any]) -> InferInput:
    tensor = InferInput(name, list(array.shape), "FP32")
    tensor.set_data_from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensor


def test_served_vectors_match_the_exported_network(server: tuple[InferenceServerClient, Settings]) -> None:
    client, _ = server
    model = load_exported(REPO_ROOT / "triton_models")
    config = model.config
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((3, config.frames, config.image_dims)).astype(np.float32)
    frame_mask = np.array([[1.0] * config.frames, [1.0] * 3 + [0.0] * (config.frames - 3), [1.0] + [0.0] * 7])
    vectors = {
        name: rng.standard_normal((3, dims)).astype(np.float32) for name, dims in config.input_dims().items()
    }
    mask = np.array([[1, 1, 1, 1], [1, 0, 1, 0], [1, 0, 0, 0]], np.float32)

    pooled = (
        client.infer(
            "video_pooling",
            [_input("FRAME_EMBEDDINGS", frames), _input("FRAME_MASK", frame_mask)],
            outputs=[InferRequestedOutput("VIDEO_EMBEDDING")],
        )
        .as_numpy("VIDEO_EMBEDDING")
        .copy()
    )
    inputs = {
        "TEXT_EMBEDDING": vectors["text"],
        "TEXT_MULTILINGUAL_EMBEDDING": vectors["text_multilingual"],
        "IMAGE_EMBEDDING": vectors["image"],
        "VIDEO_EMBEDDING": pooled,
        "REVIEWS_EMBEDDING": vectors["reviews"],
        "MODALITY_MASK": mask,
    }
    result = client.infer(
        "fusion",
        [_input(name, value) for name, value in inputs.items()],
        outputs=[InferRequestedOutput("FUSED_EMBEDDING"), InferRequestedOutput("MODALITY_WEIGHTS")],
    )

    with torch.inference_mode():
        expected_video = model.video_pooling(torch.from_numpy(frames), torch.from_numpy(frame_mask).float())
        expected = model.fusion(*(torch.from_numpy(inputs[name]) for name in inputs))
    np.testing.assert_allclose(pooled, expected_video.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.as_numpy("FUSED_EMBEDDING"), expected[0].numpy(), rtol=1e-4, atol=1e-5)
    weights = result.as_numpy("MODALITY_WEIGHTS")
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(weights[mask == 0] == 0)


def test_both_models_record_the_version_of_their_weights(
    server: tuple[InferenceServerClient, Settings],
) -> None:
    client, _ = server
    for name in MODELS:
        config = client.get_model_config(name, as_json=True)["config"]
        version = config["parameters"]["model_version"]["string_value"]
        with safe_open(str(REPO_ROOT / "triton_models" / name / "1" / WEIGHTS), framework="pt") as weights:
            assert weights.metadata()["model_version"] == version
        assert version.startswith("fusion-")
