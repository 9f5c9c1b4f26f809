"""Known-good requests for every served model: Triton's readiness says a model is loaded, a canary says it answers.

A Python-backend model whose stub process died stays "ready" while failing every request, so
``toyfuse stack status`` and ``stack up`` send each model its canary and treat a failure as unhealthy.
"""

from collections.abc import Callable

import numpy as np
import tritonclient.http as triton_http
from numpy.typing import NDArray
from tritonclient.utils import InferenceServerException

from stream.contracts.shapes import DIMS, FRAMES_PER_VIDEO, IMAGE_SHAPE, MODALITIES
from stream.inference.triton import CANARY_TEXT

Tensors = dict[str, NDArray[np.generic]]


def _text() -> Tensors:
    return {"TEXT": np.array([[CANARY_TEXT.encode()]], dtype=np.object_)}


def _image() -> Tensors:
    return {"IMAGE": np.full((1, *IMAGE_SHAPE), 128, np.uint8)}


def _video_pooling() -> Tensors:
    frames = np.full((1, FRAMES_PER_VIDEO, DIMS["image"]), 0.01, np.float32)
    return {"FRAME_EMBEDDINGS": frames, "FRAME_MASK": np.ones((1, FRAMES_PER_VIDEO), np.float32)}


def _fusion() -> Tensors:
    tensors: Tensors = {
        f"{name.upper()}_EMBEDDING": np.full((1, DIMS[name]), 0.05, np.float32)
        for name in ("text", "text_multilingual", "image", "video", "reviews")
    }
    tensors["MODALITY_MASK"] = np.ones((1, len(MODALITIES)), np.float32)
    return tensors


def _listing_embedder() -> Tensors:
    # Text only: the image encoder and video pooling it calls for media have canaries of their own.
    return {
        "TEXT": np.array([CANARY_TEXT.encode()], dtype=np.object_),
        "REVIEWS_EMBEDDING": np.zeros((1, DIMS["reviews"]), np.float32),
        "REVIEWS_MASK": np.zeros(1, np.float32),
    }


CANARIES: dict[str, Callable[[], Tensors]] = {
    "text_encoder": _text,
    "text_multilingual_encoder": _text,
    "image_encoder": _image,
    "video_pooling": _video_pooling,
    "fusion": _fusion,
    "listing_embedder": _listing_embedder,
}
DATATYPES = {np.dtype(np.object_): "BYTES", np.dtype(np.uint8): "UINT8"}


def _input(name: str, array: NDArray[np.generic]) -> triton_http.InferInput:
    tensor = triton_http.InferInput(name, list(array.shape), DATATYPES.get(array.dtype, "FP32"))
    tensor.set_data_from_numpy(array)
    return tensor


def unhealthy_models(url: str, timeout_s: float = 30.0) -> dict[str, str]:
    """Send every model in the repository its canary; return the error of each model that fails.

    Args:
        url: Triton's HTTP endpoint, ``host:port``.
        timeout_s: deadline of each canary.

    Returns:
        model name -> what went wrong (empty when every model answers). A model toyfuse does not
        know (no canary here) is left to Triton's own readiness; tests/stream/inference/test_canaries.py
        fails when a model of triton_models/ has no canary.
    """
    client = triton_http.InferenceServerClient(url, connection_timeout=timeout_s, network_timeout=timeout_s)
    try:
        names = [model["name"] for model in client.get_model_repository_index()]
        problems = {}
        for name in (name for name in names if name in CANARIES):
            try:
                client.infer(name, [_input(key, value) for key, value in CANARIES[name]().items()])
            except InferenceServerException as exc:
                problems[name] = exc.message() or str(exc)
        return problems
    finally:
        client.close()
