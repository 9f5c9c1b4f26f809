"""Triton clients of the listing path: the one-call ``listing_embedder``, and each encoder or ``fusion`` alone."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tritonclient.grpc import InferInput
from tritonclient.grpc.aio import InferenceServerClient

from stream.contracts.index import IndexSchema
from stream.contracts.shapes import DIMS, IMAGE_SHAPE, MAX_BATCH, MODALITIES, Modality
from stream.features.batching import frames_by_listing, owners_of, present_modalities
from stream.features.changes import ENCODERS_OF, model_fingerprint
from stream.features.vectors import FloatArray
from stream.inference.triton import CANARY_TEXT, TritonEncoder, blame_model_or_input, infer, model_info
from stream.retry import NO_RETRY, RetryPolicy, retried

LISTING_MODEL = "listing_embedder"
FUSION_MODEL = "fusion"
IMAGE_MODEL = "image_encoder"
VIDEO_MODEL = "video_pooling"
FUSION_INPUTS = {
    "text": "TEXT_EMBEDDING",
    "text_multilingual": "TEXT_MULTILINGUAL_EMBEDDING",
    "image": "IMAGE_EMBEDDING",
    "video": "VIDEO_EMBEDDING",
    "reviews": "REVIEWS_EMBEDDING",
}
PER_LISTING_OUTPUTS = {
    "fused": "FUSED_EMBEDDING",
    **{k: v for k, v in FUSION_INPUTS.items() if k != "reviews"},
}
PixelArray = NDArray[np.uint8]


@dataclass(frozen=True)
class ListingInputs:
    """What the listing path knows about one listing before embedding it."""

    text: str
    photos: Sequence[PixelArray] = ()  # uint8 [224, 224, 3] each, in the listing's photo order
    frames: PixelArray | None = None  # uint8 [k, 224, 224, 3] sampled from the first video
    reviews: FloatArray | None = None  # the listing's current review aggregate


@dataclass(frozen=True)
class ListingVectors:
    """Every vector the listing path stores, the modalities present and their fusion weights."""

    vectors: dict[str, FloatArray]
    modalities: list[Modality]
    weights: dict[str, float] = field(default_factory=dict)


def _tensor(name: str, array: NDArray[Any], datatype: str) -> InferInput:
    tensor = InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def pack_listings(listings: Sequence[ListingInputs], reviews_dims: int) -> list[InferInput]:
    """The request tensors of ``listing_embedder`` for a batch (photos and frames flat, with owners)."""
    texts = np.array([item.text.encode("utf-8") for item in listings], dtype=np.object_)
    reviews = np.stack(
        [
            item.reviews if item.reviews is not None else np.zeros(reviews_dims, np.float32)
            for item in listings
        ]
    ).astype(np.float32)
    tensors = [
        _tensor("TEXT", texts, "BYTES"),
        _tensor("REVIEWS_EMBEDDING", reviews, "FP32"),
        _tensor(
            "REVIEWS_MASK", np.array([item.reviews is not None for item in listings], np.float32), "FP32"
        ),
    ]
    photos = [photo for item in listings for photo in item.photos]
    if photos:
        tensors += [
            _tensor("IMAGES", np.stack(photos), "UINT8"),
            _tensor("IMAGE_LISTING", owners_of([len(item.photos) for item in listings]), "INT32"),
        ]
    clips = [item.frames for item in listings if item.frames is not None and len(item.frames)]
    if clips:
        counts = [0 if item.frames is None else len(item.frames) for item in listings]
        tensors += [
            _tensor("FRAMES", np.concatenate(clips), "UINT8"),
            _tensor("FRAME_LISTING", owners_of(counts), "INT32"),
        ]
    return tensors


def unpack_listings(
    outputs: dict[str, FloatArray], listings: Sequence[ListingInputs]
) -> list[ListingVectors]:
    """Split the batch outputs back into one :class:`ListingVectors` per listing, keeping only present vectors."""
    results, photo_start = [], 0
    for row, item in enumerate(listings):
        modalities = present_modalities(outputs["MODALITY_MASK"][row])
        vectors = {name: outputs[tensor][row] for name, tensor in PER_LISTING_OUTPUTS.items()}
        if "image" in modalities:
            vectors["photos"] = outputs["PHOTO_EMBEDDINGS"][photo_start : photo_start + len(item.photos)]
        else:
            del vectors["image"]
        if "video" not in modalities:
            del vectors["video"]
        if item.reviews is not None:
            vectors["reviews"] = item.reviews
        photo_start += len(item.photos)
        weights = dict(zip(MODALITIES, outputs["MODALITY_WEIGHTS"][row].tolist(), strict=True))
        results.append(ListingVectors(vectors, modalities, {m: weights[m] for m in modalities}))
    return results


def canary_like(listings: Sequence[ListingInputs]) -> ListingInputs:
    """A known-good listing with the modalities the batch has (gray photo and frames), to test the models."""
    gray = np.full((1, *IMAGE_SHAPE), 128, np.uint8)
    has_photos = any(len(item.photos) for item in listings)
    has_video = any(item.frames is not None and len(item.frames) for item in listings)
    has_reviews = any(item.reviews is not None for item in listings)
    return ListingInputs(
        CANARY_TEXT,
        photos=list(gray) if has_photos else (),
        frames=np.repeat(gray, 2, axis=0) if has_video else None,
        reviews=np.full(DIMS["reviews"], DIMS["reviews"] ** -0.5, np.float32) if has_reviews else None,
    )


class ListingEncoder:
    """One Triton call embeds a batch of listings (text, photos, video frames, reviews -> all vectors)."""

    def __init__(
        self,
        client: InferenceServerClient,
        schema: IndexSchema,
        timeout_s: float,
        retry: RetryPolicy = NO_RETRY,
    ) -> None:
        self._client = client
        self.retry = retry
        self._dims = {name: field.dims for name, field in schema.vectors.items()}
        self._timeout_s = timeout_s
        self._texts = [
            TritonEncoder(client, schema.vectors[name].model or name, self._dims[name], timeout_s, retry)
            for name in ("text", "text_multilingual")
        ]

    @retried("triton")
    async def model_version(self) -> str:
        """Identify the serving pipeline, e.g. ``listing_embedder/1 fusion=fusion-20261127-ab12cd``.

        Raises:
            TritonUnavailable: the models are not ready.
        """
        version, _ = await model_info(self._client, LISTING_MODEL)
        _, fusion = await model_info(self._client, FUSION_MODEL)
        return f"{LISTING_MODEL}/{version} fusion={fusion.get('model_version') or 'unknown'}"

    @retried("triton")
    async def embed(self, listings: Sequence[ListingInputs]) -> list[ListingVectors]:
        """Embed a batch in one request.

        Raises:
            TritonUnavailable: Triton could not be reached or timed out (retry later).
            TritonError: Triton answered with another error.
        """
        if not listings:
            return []
        outputs = await blame_model_or_input(
            LISTING_MODEL, lambda: self._embed(listings), lambda: self._embed([canary_like(listings)])
        )
        return unpack_listings(outputs, listings)

    async def _embed(self, listings: Sequence[ListingInputs]) -> dict[str, FloatArray]:
        names = ["MODALITY_MASK", "MODALITY_WEIGHTS", "PHOTO_EMBEDDINGS", *PER_LISTING_OUTPUTS.values()]
        tensors = pack_listings(listings, self._dims["reviews"])
        return await infer(self._client, LISTING_MODEL, tensors, names, self._timeout_s)

    @retried("triton")
    async def fuse(self, vectors: Sequence[dict[str, FloatArray]]) -> tuple[FloatArray, FloatArray]:
        """Run only the fusion model on stored per-modality vectors (after a listing's reviews changed).

        Args:
            vectors: per listing, its stored vectors by name (``text`` and ``text_multilingual`` required).

        Returns:
            fused vectors [n, 256] and modality weights [n, 4].
        """
        canary = [{name: np.full(self._dims[name], 0.05, np.float32) for name in FUSION_INPUTS}]
        outputs = await blame_model_or_input(
            FUSION_MODEL, lambda: self._fuse(vectors), lambda: self._fuse(canary)
        )
        return outputs["FUSED_EMBEDDING"], outputs["MODALITY_WEIGHTS"]

    async def _fuse(self, vectors: Sequence[dict[str, FloatArray]]) -> dict[str, FloatArray]:
        tensors = [
            _tensor(
                tensor,
                np.stack([item.get(name, np.zeros(self._dims[name], np.float32)) for item in vectors]),
                "FP32",
            )
            for name, tensor in FUSION_INPUTS.items()
        ]
        mask = np.array(
            [[name == "text" or name in item for name in MODALITIES] for item in vectors], np.float32
        )
        tensors.append(_tensor("MODALITY_MASK", mask, "FP32"))
        return await infer(
            self._client, FUSION_MODEL, tensors, ["FUSED_EMBEDDING", "MODALITY_WEIGHTS"], self._timeout_s
        )

    @retried("triton")
    async def encoder_versions(self) -> dict[str, str]:
        """The fingerprint of each served encoder (:func:`stream.features.changes.model_fingerprint`).

        Raises:
            TritonUnavailable: a model is not ready.
        """
        models = sorted({model for models in ENCODERS_OF.values() for model in models})
        return {model: model_fingerprint(model, *await model_info(self._client, model)) for model in models}

    async def encode_texts(self, texts: Sequence[str]) -> tuple[FloatArray, FloatArray]:
        """Run only the two text encoders (``text`` [n, 384] and ``text_multilingual`` [n, 512] vectors).

        Raises:
            TritonUnavailable: Triton could not be reached or timed out (retry later).
            TritonError: Triton answered with another error.
        """
        text, multilingual = await asyncio.gather(*(encoder.embed_texts(texts) for encoder in self._texts))
        return text, multilingual

    @retried("triton")
    async def encode_images(self, pixels: PixelArray) -> FloatArray:
        """Run only the image encoder on photos or frames, uint8 [n, 224, 224, 3] -> [n, 1280].

        Raises:
            TritonUnavailable: Triton could not be reached or timed out (retry later).
            TritonError: Triton answered with another error.
        """
        gray = np.full((1, *IMAGE_SHAPE), 128, np.uint8)
        vectors = [np.zeros((0, self._dims["image"]), np.float32)]
        for start in range(0, len(pixels), MAX_BATCH):
            chunk = pixels[start : start + MAX_BATCH]
            vectors.append(
                await blame_model_or_input(
                    IMAGE_MODEL, partial(self._images, chunk), partial(self._images, gray)
                )
            )
        return np.concatenate(vectors)

    async def _images(self, pixels: PixelArray) -> FloatArray:
        tensors = [_tensor("IMAGE", pixels, "UINT8")]
        outputs = await infer(self._client, IMAGE_MODEL, tensors, ["IMAGE_EMBEDDING"], self._timeout_s)
        return outputs["IMAGE_EMBEDDING"]

    @retried("triton")
    async def pool_videos(self, frames: Sequence[FloatArray]) -> FloatArray:
        """Run only the video pooling on each video's frame vectors ([k, 1280] each) -> [n, 1280].

        Raises:
            TritonUnavailable: Triton could not be reached or timed out (retry later).
            TritonError: Triton answered with another error.
        """
        if not frames:
            return np.zeros((0, self._dims["video"]), np.float32)
        owners = owners_of([len(clip) for clip in frames])
        block, mask, _ = frames_by_listing(np.concatenate(frames), owners, len(frames))
        canary = (np.full_like(block[:1], 0.05), np.ones_like(mask[:1]))
        return await blame_model_or_input(
            VIDEO_MODEL, lambda: self._pool(block, mask), lambda: self._pool(*canary)
        )

    async def _pool(self, block: FloatArray, mask: FloatArray) -> FloatArray:
        tensors = [_tensor("FRAME_EMBEDDINGS", block, "FP32"), _tensor("FRAME_MASK", mask, "FP32")]
        outputs = await infer(self._client, VIDEO_MODEL, tensors, ["VIDEO_EMBEDDING"], self._timeout_s)
        return outputs["VIDEO_EMBEDDING"]
