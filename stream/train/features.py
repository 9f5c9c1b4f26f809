"""Extract frozen-encoder features of a catalog through the real Triton encoders and cache them on disk.

Training sees exactly what serving computes: the listing text is ``stream.worker.listings.text_of``, photos
and frames go through ``stream.media.images``/``stream.media.video``, reviews through ``stream.features.reviews``.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm
from tritonclient.grpc import (
    InferenceServerClient,
    InferenceServerException,
    InferInput,
    InferRequestedOutput,
)

from stream.config import Settings
from stream.contracts.events import EventDecoder, ListingEvent
from stream.contracts.index import IndexSchema
from stream.contracts.shapes import FRAMES_PER_VIDEO, MAX_BATCH, MAX_PHOTOS
from stream.errors import EmbeddingDimMismatch, MediaError, TritonError, TritonUnavailable
from stream.features.batching import owners_of, pool_photos
from stream.features.changes import model_fingerprint
from stream.features.reviews import review_text, review_weight, weighted_mean
from stream.features.text import text_of
from stream.features.vectors import FloatArray
from stream.inference.triton import RETRYABLE_STATUSES, text_batch, version_and_parameters
from stream.media.images import ImageArray, preprocess_image
from stream.media.video import sample_frames
from stream.train import cache
from stream.train.cache import FeatureSet
from stream.train.catalog_io import CatalogRecords, fingerprint, media_path, query_text, read_catalog
from stream.train.weak_labels import weak_key

log = logging.getLogger(__name__)
ENCODERS = {
    "text": "text_encoder",
    "text_multilingual": "text_multilingual_encoder",
    "image": "image_encoder",
}


class Encoders(Protocol):
    """What extraction needs from the encoders (the Triton client, or a fake in tests)."""

    def version(self, model: str) -> str: ...

    def texts(self, model: str, texts: Sequence[str], dims: int) -> FloatArray: ...

    def images(self, pixels: ImageArray, dims: int) -> FloatArray: ...


class EncoderClient:
    """Synchronous calls to the Triton encoders, in chunks they accept."""

    def __init__(self, client: InferenceServerClient, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s

    def version(self, model: str) -> str:
        """The fingerprint the worker gives a served model (its name, version and output-shaping parameters,
        e.g. ``precision``), so a cache of features made at another precision or token limit is stale.

        Raises:
            TritonUnavailable: the model is not ready.
        """
        try:
            metadata = self._client.get_model_metadata(model, as_json=True)
            config = self._client.get_model_config(model, as_json=True)
        except InferenceServerException as exc:
            raise TritonUnavailable(
                f"Triton model {model!r} is not ready: {exc.message()}; start Triton with the encoders "
                "(`toyfuse stack up`) and pass its ports"
            ) from exc
        return model_fingerprint(model, *version_and_parameters(metadata, config))

    def texts(self, model: str, texts: Sequence[str], dims: int) -> FloatArray:
        """Embed texts with a text model; [len(texts), dims]."""
        starts = range(0, len(texts), MAX_BATCH)
        chunks = [self._infer(model, text_batch(texts[i : i + MAX_BATCH]), "TEXT_EMBEDDING") for i in starts]
        return _checked(
            model, np.concatenate(chunks) if chunks else np.zeros((0, dims), np.float32), len(texts), dims
        )

    def images(self, pixels: ImageArray, dims: int) -> FloatArray:
        """Image features of at most MAX_BATCH uint8 [224, 224, 3] images; [n, dims]."""
        tensor = InferInput("IMAGE", list(pixels.shape), "UINT8")
        tensor.set_data_from_numpy(np.ascontiguousarray(pixels))
        return _checked(
            ENCODERS["image"], self._infer(ENCODERS["image"], tensor, "IMAGE_EMBEDDING"), len(pixels), dims
        )

    def _infer(self, model: str, tensor: InferInput, output: str) -> FloatArray:
        try:
            result = self._client.infer(
                model, [tensor], outputs=[InferRequestedOutput(output)], client_timeout=self._timeout_s
            )
        except InferenceServerException as exc:
            error = TritonUnavailable if str(exc.status()) in RETRYABLE_STATUSES else TritonError
            raise error(f"Triton request to {model!r} failed ({exc.status()}): {exc.message()}") from exc
        return np.asarray(result.as_numpy(output), dtype=np.float32)


def _checked(model: str, vectors: FloatArray, rows: int, dims: int) -> FloatArray:
    if vectors.shape != (rows, dims):
        raise EmbeddingDimMismatch(
            f"{model} returned {list(vectors.shape)}, expected [{rows}, {dims}]; fix the model or the schema"
        )
    return vectors


@dataclass(frozen=True)
class MediaFeatures:
    """Per-photo and per-frame image features of every listing, with masks."""

    photos: FloatArray  # [N, MAX_PHOTOS, d]
    photo_mask: FloatArray  # [N, MAX_PHOTOS]
    frames: FloatArray  # [N, FRAMES_PER_VIDEO, d]
    frame_mask: FloatArray  # [N, FRAMES_PER_VIDEO]
    problems: int  # photos and videos that could not be read


def listing_media(event: ListingEvent, media_dir: Path) -> tuple[list[ImageArray], ImageArray | None, int]:
    """A listing's decoded photos (of its first MAX_PHOTOS), its first video's frames, and failures."""
    photos, problems = [], 0
    for uri in event.images[:MAX_PHOTOS]:
        try:
            photos.append(preprocess_image(media_path(uri, media_dir).read_bytes()))
        except (OSError, MediaError) as exc:
            problems += 1
            log.warning("%s: photo %s skipped: %s", event.listing_id, uri, exc)
    frames = None
    if event.videos:
        try:
            frames = sample_frames(media_path(event.videos[0], media_dir).read_bytes(), FRAMES_PER_VIDEO)
        except (OSError, MediaError) as exc:
            problems += 1
            log.warning("%s: video %s skipped: %s", event.listing_id, event.videos[0], exc)
    return photos, frames, problems


def _media_items(
    records: CatalogRecords, tally: list[int], progress: bool
) -> Iterator[tuple[int, int, ImageArray]]:
    """``(row, slot, pixels)`` of every photo (slot 0..3) and frame (4..11); failures go to ``tally``."""
    for row, event in enumerate(tqdm(records.listings, desc="media", disable=not progress)):
        photos, frames, problems = listing_media(event, records.media_dir)
        tally[0] += problems
        yield from ((row, slot, pixels) for slot, pixels in enumerate(photos))
        yield from (
            (row, MAX_PHOTOS + slot, pixels) for slot, pixels in enumerate(() if frames is None else frames)
        )


def encode_media(records: CatalogRecords, encoder: Encoders, dims: int, progress: bool) -> MediaFeatures:
    """Run every photo and sampled frame through the image encoder, MAX_BATCH images per request."""
    slots = np.zeros((len(records.listings), MAX_PHOTOS + FRAMES_PER_VIDEO, dims), np.float32)
    filled = np.zeros(slots.shape[:2], np.float32)
    tally, pending = [0], []
    for item in _media_items(records, tally, progress):
        pending.append(item)
        if len(pending) == MAX_BATCH:
            _scatter(pending, encoder, dims, slots, filled)
            pending = []
    if pending:
        _scatter(pending, encoder, dims, slots, filled)
    return MediaFeatures(
        slots[:, :MAX_PHOTOS], filled[:, :MAX_PHOTOS], slots[:, MAX_PHOTOS:], filled[:, MAX_PHOTOS:], tally[0]
    )


def _scatter(
    items: list[tuple[int, int, ImageArray]],
    encoder: Encoders,
    dims: int,
    slots: FloatArray,
    filled: FloatArray,
) -> None:
    vectors = encoder.images(np.stack([pixels for _, _, pixels in items]), dims)
    for (row, slot, _), vector in zip(items, vectors, strict=True):
        slots[row, slot], filled[row, slot] = vector, 1.0


def review_features(records: CatalogRecords, encoder: Encoders, dims: int) -> tuple[FloatArray, FloatArray]:
    """Each listing's review vector (weighted mean of its reviews' text_multilingual vectors) and presence."""
    owned = [
        (row, review)
        for row, event in enumerate(records.listings)
        for review in records.reviews.get(event.listing_id, [])
        if review_text(review.title, review.text)
    ]
    texts = [review_text(review.title, review.text) for _, review in owned]
    vectors = encoder.texts(ENCODERS["text_multilingual"], texts, dims)
    weights = np.array([review_weight(r.helpful_votes, r.verified_purchase, r.occurred_at) for _, r in owned])
    rows = np.array([row for row, _ in owned], dtype=np.int64)
    aggregate = np.zeros((len(records.listings), dims), np.float32)
    for row in np.unique(rows):
        aggregate[row] = weighted_mean(vectors[rows == row], weights[rows == row])
    return aggregate, (np.abs(aggregate).sum(axis=1) > 0).astype(np.float32)


def extract(records: CatalogRecords, encoder: Encoders, schema: IndexSchema, progress: bool) -> FeatureSet:
    """Every feature of every listing of a decoded catalog."""
    dims = {name: field.dims for name, field in schema.vectors.items()}
    texts = [text_of(event) for event in records.listings]
    queries = [query_text(event) for event in records.listings]
    text, multilingual = (
        encoder.texts(ENCODERS[name], texts, dims[name]) for name in ("text", "text_multilingual")
    )
    query, query_multilingual = (
        encoder.texts(ENCODERS[name], queries, dims[name]) for name in ("text", "text_multilingual")
    )
    reviews, has_reviews = review_features(records, encoder, dims["reviews"])
    media = encode_media(records, encoder, dims["image"], progress)
    present = media.photo_mask > 0
    image, has_image = pool_photos(media.photos[present], owners_of(present.sum(axis=1).tolist()), len(texts))
    has_video = (media.frame_mask.sum(axis=1) > 0).astype(np.float32)
    if media.problems:
        log.warning(
            "%d photos or videos could not be read; those listings are embedded without them", media.problems
        )
    return FeatureSet(
        listing_ids=np.array([event.listing_id for event in records.listings]),
        families=np.array(records.families),
        categories=np.array([event.categories[-1] if event.categories else "" for event in records.listings]),
        locales=np.array([event.locale or "" for event in records.listings]),
        text=text,
        text_multilingual=multilingual,
        photos=media.photos,
        photo_mask=media.photo_mask,
        image=image,
        frames=media.frames,
        frame_mask=media.frame_mask,
        reviews=reviews,
        modality_mask=np.stack([np.ones_like(has_image), has_image, has_video, has_reviews], axis=1),
        query_text=query,
        query_text_multilingual=query_multilingual,
        weak_keys=np.array([weak_key(event) for event in records.listings], dtype=np.str_),
    )


def default_features_path(run_dir: Path, catalog_dir: Path) -> Path:
    """Default cache of a catalog's features: ``<run_dir>/features/<catalog name>.npz``."""
    return run_dir / "features" / f"{catalog_dir.resolve().name}.npz"


def extract_cached(
    catalog_dir: Path,
    out_path: Path,
    encoder: Encoders,
    decoder: EventDecoder,
    schema: IndexSchema,
    progress: bool,
) -> bool:
    """Extract a catalog's features into ``out_path`` unless its cache matches the catalog and the encoders.

    Returns:
        True when features were extracted, False when the cache was still valid.
    """
    index = {
        "catalog": str(catalog_dir.resolve()),
        "catalog_fingerprint": fingerprint(catalog_dir),
        "encoders": {name: encoder.version(model) for name, model in ENCODERS.items()},
    }
    cached = cache.read_index(out_path)
    if cached is not None and out_path.exists() and all(cached.get(k) == v for k, v in index.items()):
        return False
    records = read_catalog(catalog_dir, decoder)
    cache.save(extract(records, encoder, schema, progress), out_path, index)
    return True


def extract_catalog_features(
    catalog_dir: Path, out_path: Path, settings: Settings, progress: bool = True
) -> bool:
    """Extract and cache a catalog's features through Triton (see :func:`extract_cached`).

    Args:
        catalog_dir: a catalog in the on-disk format (see ``stream.train.catalog_io``).
        out_path: the ``.npz`` to write (a ``.json`` index goes beside it).
        settings: Triton address, timeouts and the schema folder.
        progress: show a progress bar over the listings' media.

    Returns:
        True when features were extracted, False when the cache was still valid.

    Raises:
        CatalogError: the catalog is missing or invalid.
        TritonUnavailable: an encoder is not ready or timed out.
        TritonError, EmbeddingDimMismatch: an encoder answered with an error or wrong sizes.
    """
    schema = IndexSchema.from_yaml(settings.schemas_dir / "embedding_index.yaml")
    with InferenceServerClient(settings.triton_grpc_url) as client:
        encoder = EncoderClient(client, settings.triton_timeout_s)
        return extract_cached(
            catalog_dir, out_path, encoder, EventDecoder(settings.schemas_dir), schema, progress
        )
