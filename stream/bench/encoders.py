"""The encoders' ceilings: each encoder model called directly through Triton's gRPC client, batch by batch,
at 1, 2 and 4 calls in flight, on a catalog's own listing texts and photos."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tritonclient.grpc import InferInput
from tritonclient.grpc.aio import InferenceServerClient

from stream.bench.throughput import CONCURRENCIES, Progress, ceiling
from stream.inference.triton import TEXT_OUTPUT, infer, text_batch

IMAGE_INPUT = "IMAGE"
IMAGE_OUTPUT = "IMAGE_EMBEDDING"
TEXT_MODELS = ("text_encoder", "text_multilingual_encoder")
IMAGE_MODEL = "image_encoder"


@dataclass(frozen=True)
class EncoderWork:
    """What the encoders are timed on: listing texts and preprocessed photos (uint8 NHWC)."""

    texts: Sequence[str]
    photos: NDArray[np.uint8]
    batch: int = 32  # items per call
    repeats: int = 1  # passes over the items at each concurrency


def image_batch(photos: NDArray[np.uint8]) -> InferInput:
    """Pack photos as the image encoder's UINT8 ``IMAGE`` tensor."""
    tensor = InferInput(IMAGE_INPUT, list(photos.shape), "UINT8")
    tensor.set_data_from_numpy(photos)
    return tensor


async def encoder_ceilings(
    client: InferenceServerClient, work: EncoderWork, progress: Progress, timeout_s: float = 120.0
) -> dict[str, dict[str, Any]]:
    """Items per second of each encoder at each concurrency, and the best (its ceiling).

    Args:
        client: a gRPC client of the Triton serving the encoders.
        work: the items, batch size and passes.
        progress: called with the number of items of each finished call.
        timeout_s: deadline of one call.

    Returns:
        ``{model: {"per_s", "best_concurrency", "by_concurrency", "batch"}}`` for the two text encoders
        and the image encoder (skipped when ``work`` has no photos).

    Raises:
        TritonError: a call failed (TritonUnavailable: Triton could not be reached or timed out).
    """
    results = {}
    texts = list(work.texts) * work.repeats
    for model in TEXT_MODELS:

        async def embed_texts(chunk: Sequence[str], model: str = model) -> None:
            await infer(client, model, [text_batch(chunk)], [TEXT_OUTPUT], timeout_s)

        await embed_texts(texts[: work.batch])  # warm-up: first calls pay for lazy initialisation
        results[model] = await ceiling(embed_texts, texts, work.batch, progress)
    if len(work.photos):
        photos = list(np.concatenate([work.photos] * work.repeats))

        async def embed_photos(chunk: Sequence[NDArray[np.uint8]]) -> None:
            await infer(client, IMAGE_MODEL, [image_batch(np.stack(chunk))], [IMAGE_OUTPUT], timeout_s)

        await embed_photos(photos[: work.batch])
        results[IMAGE_MODEL] = await ceiling(embed_photos, photos, work.batch, progress)
    return results


def work_items(work: EncoderWork) -> int:
    """How many items ``encoder_ceilings`` embeds for ``work`` (for a progress bar), warm-ups excluded."""
    per_pass = len(TEXT_MODELS) * len(work.texts) + len(work.photos)
    return per_pass * work.repeats * len(CONCURRENCIES)
