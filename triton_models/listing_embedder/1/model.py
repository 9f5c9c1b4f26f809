"""Triton Python-backend BLS model: text, photos, video frames and reviews of a batch of listings -> vectors."""

import asyncio
import json
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from stream.contracts.shapes import DIMS, MAX_BATCH
from stream.features.batching import frames_by_listing, modality_mask, pool_photos
from stream.model.serving import error_response, output_dtypes, parameters

Array = npt.NDArray[Any]
MODEL = "listing_embedder"
OUTPUTS = (
    "FUSED_EMBEDDING",
    "TEXT_EMBEDDING",
    "TEXT_MULTILINGUAL_EMBEDDING",
    "IMAGE_EMBEDDING",
    "PHOTO_EMBEDDINGS",
    "VIDEO_EMBEDDING",
    "MODALITY_MASK",
    "MODALITY_WEIGHTS",
)


class TritonPythonModel:
    """Calls text_encoder, text_multilingual_encoder and image_encoder (photos, frames) at once, then
    video_pooling and fusion: the encoders of one batch run side by side on the instances they have."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        self.encoder_batch = int(parameters(config)["encoder_batch"])
        self.dtypes = output_dtypes(pb_utils, config, OUTPUTS)

    async def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            try:
                responses.append(pb_utils.InferenceResponse(await self._embed(request)))
            except pb_utils.TritonModelException as exc:  # its message already names the failed model
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))))
            except Exception as exc:  # noqa: BLE001 - one bad request never fails the others
                responses.append(error_response(pb_utils, MODEL, exc))
        return responses

    async def _embed(self, request: Any) -> list[Any]:
        texts = _input(request, "TEXT")
        listings = len(texts)
        if listings > MAX_BATCH:
            raise pb_utils.TritonModelException(
                f"listing_embedder takes at most {MAX_BATCH} listings per request, got {listings}; split the batch"
            )
        text, multilingual, photos, frames = await asyncio.gather(
            self._infer("text_encoder", {"TEXT": texts.reshape(-1, 1)}, "TEXT_EMBEDDING"),
            self._infer("text_multilingual_encoder", {"TEXT": texts.reshape(-1, 1)}, "TEXT_EMBEDDING"),
            self._images(request, "IMAGES"),
            self._images(request, "FRAMES"),
        )
        image, image_present = pool_photos(photos, self._owners(request, "IMAGE_LISTING"), listings)
        block, frame_mask, video_present = frames_by_listing(
            frames, self._owners(request, "FRAME_LISTING"), listings
        )
        video = await self._video(block, frame_mask, video_present)
        reviews, reviews_present = _input(request, "REVIEWS_EMBEDDING"), _input(request, "REVIEWS_MASK")
        mask = modality_mask(image_present, video_present, reviews_present)
        fusion_inputs = {
            "TEXT_EMBEDDING": text,
            "TEXT_MULTILINGUAL_EMBEDDING": multilingual,
            "IMAGE_EMBEDDING": image,
            "VIDEO_EMBEDDING": video,
            "REVIEWS_EMBEDDING": reviews.astype(np.float32),
            "MODALITY_MASK": mask,
        }
        fused, weights = await self._infer_many(
            "fusion", fusion_inputs, ["FUSED_EMBEDDING", "MODALITY_WEIGHTS"]
        )
        outputs = {
            "FUSED_EMBEDDING": fused,
            "TEXT_EMBEDDING": text,
            "TEXT_MULTILINGUAL_EMBEDDING": multilingual,
            "IMAGE_EMBEDDING": image,
            "PHOTO_EMBEDDINGS": photos,
            "VIDEO_EMBEDDING": video,
            "MODALITY_MASK": mask,
            "MODALITY_WEIGHTS": weights,
        }
        cast = {name: np.ascontiguousarray(value, dtype=self.dtypes[name]) for name, value in outputs.items()}
        return [pb_utils.Tensor(name, value) for name, value in cast.items()]

    async def _images(self, request: Any, name: str) -> Array:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None or tensor.as_numpy().shape[0] == 0:
            return np.zeros((0, DIMS["image"]), dtype=np.float32)
        pixels = tensor.as_numpy()
        chunks = [
            pixels[start : start + self.encoder_batch] for start in range(0, len(pixels), self.encoder_batch)
        ]
        encoded = await asyncio.gather(
            *(self._infer("image_encoder", {"IMAGE": chunk}, "IMAGE_EMBEDDING") for chunk in chunks)
        )
        return np.concatenate(encoded)

    @staticmethod
    def _owners(request: Any, name: str) -> Array:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        return np.zeros(0, dtype=np.int32) if tensor is None else tensor.as_numpy().astype(np.int32)

    async def _video(self, block: Array, frame_mask: Array, present: Array) -> Array:
        video = np.zeros((block.shape[0], DIMS["image"]), dtype=np.float32)
        rows = np.flatnonzero(present)
        if rows.size:
            inputs = {"FRAME_EMBEDDINGS": block[rows], "FRAME_MASK": frame_mask[rows]}
            video[rows] = await self._infer("video_pooling", inputs, "VIDEO_EMBEDDING")
        return video

    async def _infer(self, model: str, inputs: dict[str, Array], output: str) -> Array:
        return (await self._infer_many(model, inputs, [output]))[0]

    @staticmethod
    async def _infer_many(model: str, inputs: dict[str, Array], outputs: list[str]) -> list[Array]:
        request = pb_utils.InferenceRequest(
            model_name=model,
            requested_output_names=outputs,
            inputs=[pb_utils.Tensor(name, value) for name, value in inputs.items()],
        )
        response = await request.async_exec()
        if response.has_error():
            raise pb_utils.TritonModelException(f"{model} failed: {response.error().message()}")
        return [pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in outputs]


def _input(request: Any, name: str) -> Array:
    array: Array = pb_utils.get_input_tensor_by_name(request, name).as_numpy()
    return array
