"""Change-aware embedding of upserts: fetch and encode only the inputs that changed, reuse the rest.

Per upsert, the inputs whose digest or encoders differ from the stored record's sources are fetched and
encoded; the others keep their stored vectors, and when nothing that fusion sees changed (inputs, reviews
vector, fusion version) the stored fused vector is kept too, so a price-only update calls no model at
all. Encoder outputs go through the shared cache, so content that another listing already showed is not
encoded again. An upsert that can reuse nothing is embedded by ``listing_embedder`` in one call.
"""

import asyncio
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stream import metrics
from stream.contracts.events import ListingEvent
from stream.contracts.shapes import MODALITIES
from stream.features.batching import modalities_of, pool_photos
from stream.features.changes import (
    ENCODERS_OF,
    VECTORS_OF,
    Input,
    Sources,
    embedded_sources,
    input_digests,
    input_encoders,
    pixels_digest,
    to_encode,
)
from stream.features.text import text_of
from stream.features.vectors import FloatArray
from stream.inference.listing import ListingEncoder, ListingInputs, ListingVectors, PixelArray
from stream.media.fetch import ListingMedia, MediaProblem, empty_batch
from stream.store.encoder_cache import CacheKey, EncoderCache
from stream.store.listings import StoredListing
from stream.store.versions import encoders_of, fusion_version_of

NO_MEDIA = ListingMedia(empty_batch(), (), empty_batch(), None, ())
CACHED_VECTORS = (*VECTORS_OF["text"], "photos", "video")  # what Needs looks up in the encoder cache


class MediaSource(Protocol):
    """Fetches and decodes a listing's photos and first video (see :class:`stream.media.fetch.MediaFetcher`)."""

    async def fetch_listing_media(self, images: Sequence[str], videos: Sequence[str]) -> ListingMedia: ...


@dataclass(frozen=True)
class Embedding:
    """What an upsert stores: its vectors, what they came from, and the photos or video that failed."""

    vectors: ListingVectors
    sources: Sources
    problems: tuple[MediaProblem, ...]


@dataclass(frozen=True)
class Upsert:
    """One upsert on its way: its text, the stored record it may reuse, and what it fetched."""

    text: str
    stored: StoredListing | None  # None: nothing stored that these encoders computed
    reviews: FloatArray | None
    encode: frozenset[Input]
    media: ListingMedia
    sources: Sources  # of the record it writes

    def reused(self, name: Input) -> bool:
        """Whether input ``name`` keeps its stored vectors."""
        return self.stored is not None and self.sources.same(self.stored.sources, name)


@dataclass(frozen=True)
class Needs:
    """The encoder outputs an upsert must get from the cache or the encoders."""

    text: tuple[CacheKey, ...] = ()  # the text vectors, in VECTORS_OF["text"] order
    photos: tuple[CacheKey, ...] = ()  # one per fetched photo, in order
    video: CacheKey | None = None  # the video vector, when one was fetched

    def keys_needed(self) -> Iterator[CacheKey]:
        """Every output needed."""
        yield from (*self.text, *self.photos, *([] if self.video is None else [self.video]))


class Reembedder:
    """Embeds a batch of upserts from their events, their stored records and their review vectors."""

    def __init__(
        self,
        *,
        encoder: ListingEncoder,
        media: MediaSource,
        cache: EncoderCache,
        model_version: str,
        encoders: Mapping[str, str],
    ) -> None:
        self._encoder = encoder
        self._media = media
        self._cache = cache
        self._encoders_label = encoders_of(model_version)
        self._fusion = fusion_version_of(model_version)
        self._models = dict(encoders)  # Triton model -> fingerprint (ListingEncoder.encoder_versions)
        self._inputs = input_encoders(encoders)

    async def embed(
        self,
        events: Sequence[ListingEvent],
        stored: Mapping[str, StoredListing | None],
        reviews: Mapping[str, FloatArray | None],
    ) -> list[Embedding]:
        """Embed upserts, one :class:`Embedding` per event, in order.

        Raises:
            TritonUnavailable: Triton could not be reached or timed out (retry later).
            TritonError: Triton answered with another error.
            StoreUnavailable: the encoder cache could not be reached (retry later).
        """
        upserts = await asyncio.gather(
            *(self._prepare(e, stored.get(e.listing_id), reviews.get(e.listing_id)) for e in events)
        )
        needs = [self._needs(upsert) for upsert in upserts]
        outputs = await self._cache.get_many([key for need in needs for key in need.keys_needed()])
        full = [i for i, upsert in enumerate(upserts) if reuses_nothing(upsert, needs[i], outputs)]
        embedded = dict(zip(full, await self._embed_whole([upserts[i] for i in full]), strict=True))
        computed = {key: vector for i in full for key, vector in self._outputs(needs[i], embedded[i])}
        partial = [i for i in range(len(upserts)) if i not in embedded]
        computed |= await self._encode([upserts[i] for i in partial], [needs[i] for i in partial], outputs)
        await self._cache.put_many(computed)
        kept = {i: self._kept_fused(upserts[i]) for i in partial}
        vectors = [assembled(upserts[i], needs[i], outputs | computed) for i in partial]
        fused = await self._fuse(vectors, [kept[i] for i in partial])
        embedded |= dict(zip(partial, fused, strict=True))
        for i, upsert in enumerate(upserts):
            count(upsert, fused_kept=kept.get(i) is not None)
        return [Embedding(embedded[i], u.sources, u.media.problems) for i, u in enumerate(upserts)]

    async def _prepare(
        self, event: ListingEvent, stored: StoredListing | None, reviews: FloatArray | None
    ) -> Upsert:
        text = text_of(event)
        usable = stored if stored is not None and self._computed_here(stored) else None
        video = event.videos[0] if event.videos else None
        wanted = Sources.of(input_digests(text, event.images, video), self._inputs)
        encode = to_encode(usable.sources if usable is not None else None, wanted)
        media = NO_MEDIA
        if encode & {"image", "video"}:
            media = await self._media.fetch_listing_media(
                event.images if "image" in encode else (), event.videos if "video" in encode else ()
            )
        fetched = input_digests(text, media.photo_uris, media.video_uri)
        return Upsert(text, usable, reviews, encode, media, embedded_sources(wanted, encode, fetched))

    def _computed_here(self, stored: StoredListing) -> bool:
        """Whether ``stored`` names its sources and the served encoders (so its vectors can be reused)."""
        return stored.sources is not None and encoders_of(stored.model_version) == self._encoders_label

    def _needs(self, upsert: Upsert) -> Needs:
        arrived = {n for n in upsert.encode if n in upsert.sources.digests and not upsert.reused(n)}
        text = upsert.sources.digests["text"]
        image, video = self._models["image_encoder"], self._inputs["video"]
        return Needs(
            text=tuple(
                CacheKey(vector, self._models[model], text)
                for vector, model in zip(VECTORS_OF["text"], ENCODERS_OF["text"], strict=True)
            )
            if "text" in arrived
            else (),
            photos=tuple(CacheKey("photos", image, pixels_digest(photo)) for photo in upsert.media.photos)
            if "image" in arrived
            else (),
            video=CacheKey("video", video, pixels_digest(upsert.media.frames))
            if "video" in arrived
            else None,
        )

    async def _embed_whole(self, upserts: Sequence[Upsert]) -> list[ListingVectors]:
        inputs = [
            ListingInputs(
                u.text, list(u.media.photos), u.media.frames if len(u.media.frames) else None, u.reviews
            )
            for u in upserts
        ]
        return await self._encoder.embed(inputs) if inputs else []

    @staticmethod
    def _outputs(needs: Needs, vectors: ListingVectors) -> Iterator[tuple[CacheKey, FloatArray]]:
        """The encoder outputs of a whole embedding, to cache."""
        yield from zip(needs.text, (vectors.vectors[name] for name in VECTORS_OF["text"]), strict=True)
        if needs.photos:
            yield from zip(needs.photos, vectors.vectors["photos"], strict=True)
        if needs.video is not None:
            yield needs.video, vectors.vectors["video"]

    async def _encode(
        self, upserts: Sequence[Upsert], needs: Sequence[Needs], cached: Mapping[CacheKey, FloatArray]
    ) -> dict[CacheKey, FloatArray]:
        """Compute the outputs of ``needs`` not in ``cached``: texts, then photos and frames in one call."""
        texts = {need.text: u.text for u, need in zip(upserts, needs, strict=True) if need.text}
        texts = {keys: text for keys, text in texts.items() if not all(key in cached for key in keys)}
        computed: dict[CacheKey, FloatArray] = {}
        if texts:
            vectors = await self._encoder.encode_texts(list(texts.values()))
            for keys, row in zip(texts, zip(*vectors, strict=True), strict=True):
                computed |= dict(zip(keys, row, strict=True))
        photos = {
            key: photo
            for u, need in zip(upserts, needs, strict=True)
            for key, photo in zip(need.photos, u.media.photos, strict=True)
            if key not in cached
        }
        videos = {
            key: u.media.frames
            for u, need in zip(upserts, needs, strict=True)
            if (key := need.video) is not None and key not in cached
        }
        return computed | await self._encode_pixels(photos, videos)

    async def _encode_pixels(
        self, photos: Mapping[CacheKey, PixelArray], videos: Mapping[CacheKey, PixelArray]
    ) -> dict[CacheKey, FloatArray]:
        if not photos and not videos:
            return {}
        clips = list(videos.values())
        pixels = np.concatenate([*(photo[np.newaxis] for photo in photos.values()), *clips])
        vectors = await self._encoder.encode_images(pixels)
        computed = dict(zip(photos, vectors[: len(photos)], strict=True))
        if clips:
            bounds = np.cumsum([len(photos), *(len(clip) for clip in clips)])
            frames = [vectors[start:end] for start, end in itertools.pairwise(bounds)]
            computed |= dict(zip(videos, await self._encoder.pool_videos(frames), strict=True))
        return computed

    async def _fuse(
        self, vectors: Sequence[dict[str, FloatArray]], kept: Sequence[FloatArray | None]
    ) -> list[ListingVectors]:
        """Each upsert's vectors with its fused vector: the kept one, or fused anew (all in one call)."""
        again = [item for item, old in zip(vectors, kept, strict=True) if old is None]
        fused, weights = await self._encoder.fuse(again) if again else (np.zeros(0), np.zeros(0))
        rows = iter(zip(fused, weights, strict=True))
        results = []
        for item, old in zip(vectors, kept, strict=True):
            modalities = modalities_of(item)
            if old is not None:
                results.append(ListingVectors({**item, "fused": old}, modalities))
                continue
            vector, row = next(rows)
            weight = dict(zip(MODALITIES, row.tolist(), strict=True))
            results.append(
                ListingVectors({**item, "fused": vector}, modalities, {m: weight[m] for m in modalities})
            )
        return results

    def _kept_fused(self, upsert: Upsert) -> FloatArray | None:
        """The stored fused vector if fusion would see exactly what it saw (inputs, reviews, version), else None."""
        stored = upsert.stored
        if stored is None or stored.sources != upsert.sources:
            return None
        if fusion_version_of(stored.model_version) != self._fusion:
            return None
        if not same_vector(stored.vectors.get("reviews"), upsert.reviews):
            return None
        return stored.vectors.get("fused")


def assembled(upsert: Upsert, needs: Needs, outputs: Mapping[CacheKey, FloatArray]) -> dict[str, FloatArray]:
    """An upsert's per-modality vectors: stored ones for reused inputs, ``outputs`` for the others (pure)."""
    stored = upsert.stored
    vectors: dict[str, FloatArray] = {}
    for name in upsert.sources.digests:
        if stored is not None and upsert.reused(name):
            vectors |= {
                vector: stored.vectors[vector] for vector in VECTORS_OF[name] if vector in stored.vectors
            }
    vectors |= {vector: outputs[key] for vector, key in zip(VECTORS_OF["text"], needs.text, strict=False)}
    if needs.photos:
        photos = np.stack([outputs[key] for key in needs.photos])
        vectors["photos"] = photos
        vectors["image"] = pool_photos(photos, np.zeros(len(photos), np.int32), 1)[0][0]
    if needs.video is not None:
        vectors["video"] = outputs[needs.video]
    if upsert.reviews is not None:
        vectors["reviews"] = upsert.reviews
    return vectors


def reuses_nothing(upsert: Upsert, needs: Needs, cached: Mapping[CacheKey, FloatArray]) -> bool:
    """Whether an upsert has nothing stored or cached to reuse, so ``listing_embedder`` embeds it whole (pure)."""
    reused = any(upsert.reused(name) for name in upsert.sources.digests)
    return not reused and not any(key in cached for key in needs.keys_needed())


def same_vector(a: FloatArray | None, b: FloatArray | None) -> bool:
    """Whether two optional vectors are both absent or equal element for element (pure)."""
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def count(upsert: Upsert, fused_kept: bool) -> None:
    """Count, per input present and for fusion, whether the upsert encoded it or reused it."""
    for name in upsert.sources.digests:
        outcome = metrics.REUSED if upsert.reused(name) else metrics.ENCODED
        metrics.upsert_inputs_total.labels(name, outcome).inc()
    fused_outcome = metrics.REUSED if fused_kept else metrics.ENCODED
    metrics.upsert_inputs_total.labels(metrics.FUSED_INPUT, fused_outcome).inc()
