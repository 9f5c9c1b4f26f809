"""Safe async download of a listing's photos and video, decoded into image encoder inputs."""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

import aiohttp
import numpy as np

from stream.config import Settings
from stream.contracts.shapes import IMAGE_SIZE, MAX_PHOTOS
from stream.errors import MediaError, MediaFailure
from stream.media.images import ImageArray, preprocess_image
from stream.media.video import sample_frames

MediaKind = Literal["image", "video"]

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 5
SCHEMES = ("http", "https")
# Servers that do not know the type of a file send one of these; the decoder is the real check.
GENERIC_TYPES = ("application/octet-stream", "binary/octet-stream")
ACCEPTED_TYPES: dict[MediaKind, tuple[str, ...]] = {
    "image": ("image/",),
    "video": ("video/", "application/mp4", "application/x-matroska"),
}


@dataclass(frozen=True)
class MediaProblem:
    """One photo or video of a listing that could not be used."""

    uri: str
    reason: MediaFailure
    message: str


@dataclass(frozen=True)
class ListingMedia:
    """A listing's decoded media, ready for the image encoder, and what failed.

    Attributes:
        photos: uint8 (p, 224, 224, 3), the photos that decoded, in producer order (p <= MAX_PHOTOS).
        photo_uris: The URI of each row of ``photos``.
        frames: uint8 (n, 224, 224, 3) sampled from the first video (n = 0 when there is none or it failed).
        video_uri: The URI ``frames`` came from, None when ``frames`` is empty.
        problems: One entry per photo or video that was skipped.
    """

    photos: ImageArray
    photo_uris: tuple[str, ...]
    frames: ImageArray
    video_uri: str | None
    problems: tuple[MediaProblem, ...]


def empty_batch() -> ImageArray:
    """Return a (0, 224, 224, 3) uint8 array: no image."""
    return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)


def check_uri(uri: str) -> SplitResult:
    """Parse ``uri`` and accept only absolute http(s) URLs.

    Raises:
        MediaError: ``unsupported_scheme`` for any other URI.
    """
    try:
        parts = urlsplit(uri)
        has_host = bool(parts.hostname)
    except ValueError as exc:
        raise MediaError(
            "unsupported_scheme", f"{uri!r} is not a URL ({exc}); send http(s) media URIs"
        ) from exc
    if parts.scheme.lower() not in SCHEMES or not has_host:
        raise MediaError("unsupported_scheme", f"{uri!r} is not an http(s) URL; send http(s) media URIs")
    return parts


def check_content_type(uri: str, content_type: str, kind: MediaKind | None) -> None:
    """Refuse a response whose declared type cannot be a photo or video (e.g. an HTML error page).

    Raises:
        MediaError: ``content_type`` when the type is neither generic nor one expected for ``kind``.
    """
    kinds: tuple[MediaKind, ...] = (kind,) if kind is not None else ("image", "video")
    accepted = GENERIC_TYPES + tuple(prefix for name in kinds for prefix in ACCEPTED_TYPES[name])
    if not content_type.lower().startswith(accepted):
        expected = " or ".join(kinds)
        raise MediaError(
            "content_type", f"{uri} is served as {content_type!r}, not as {expected}; check the URI"
        )


class MediaFetcher:
    """Downloads media over http(s) with a deadline, a size limit and a cap on parallel downloads."""

    def __init__(
        self, session: aiohttp.ClientSession, timeout_s: float, max_bytes: int, max_concurrency: int
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._slots = asyncio.Semaphore(max_concurrency)

    @classmethod
    def from_settings(cls, session: aiohttp.ClientSession, settings: Settings) -> "MediaFetcher":
        """Build a fetcher with the ``media_*`` limits of ``settings``."""
        return cls(
            session, settings.media_timeout_s, settings.media_max_bytes, settings.media_max_concurrency
        )

    async def fetch(self, uri: str, kind: MediaKind | None = None) -> bytes:
        """Download ``uri`` whole, refusing anything slow, large, non-http(s) or of the wrong type.

        Args:
            uri: An http(s) URL.
            kind: What the URI should hold; its content type is checked against it (None: image or video).

        Returns:
            The response body.

        Raises:
            MediaError: ``unsupported_scheme``, ``connection``, ``timeout``, ``http_status``, ``content_type``
                or ``too_large``.
        """
        check_uri(uri)
        async with self._slots:
            try:
                return await self._get(uri, kind)
            except TimeoutError as exc:
                raise MediaError(
                    "timeout", f"{uri} took longer than {self._timeout_s:g} s (TOYFUSE_MEDIA_TIMEOUT_S)"
                ) from exc
            except aiohttp.NonHttpUrlRedirectClientError as exc:
                raise MediaError(
                    "unsupported_scheme", f"{uri} redirects to a non-http(s) URL: {exc}"
                ) from exc
            except aiohttp.ClientError as exc:
                raise MediaError("connection", f"{uri} could not be downloaded: {exc!r}") from exc

    async def _get(self, uri: str, kind: MediaKind | None) -> bytes:
        async with self._session.get(uri, timeout=self._timeout, max_redirects=MAX_REDIRECTS) as response:
            if response.status != 200:
                raise MediaError("http_status", f"{uri} answered HTTP {response.status} {response.reason}")
            check_content_type(uri, response.content_type, kind)
            declared = response.content_length
            if declared is not None and declared > self._max_bytes:
                raise self._too_large(uri, f"declares {declared} bytes")
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                size += len(chunk)
                if size > self._max_bytes:
                    raise self._too_large(uri, f"sent more than {self._max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    def _too_large(self, uri: str, what: str) -> MediaError:
        return MediaError(
            "too_large", f"{uri} {what}, over the {self._max_bytes}-byte limit (TOYFUSE_MEDIA_MAX_BYTES)"
        )

    async def fetch_listing_media(self, images: Sequence[str], videos: Sequence[str]) -> ListingMedia:
        """Download and decode up to ``MAX_PHOTOS`` photos and the first video, all at once.

        Decoding runs in worker threads. A photo or video that fails is reported in ``problems`` and left
        out; the others are still returned.

        Args:
            images: Photo URIs in producer order; those past ``MAX_PHOTOS`` are ignored.
            videos: Video URIs; only the first is used.

        Returns:
            The decoded media and the problems met.
        """
        photo_uris, video_uris = list(images[:MAX_PHOTOS]), list(videos[:1])
        loads = [self._load(uri, "image", preprocess_image) for uri in photo_uris]
        loads += [self._load(uri, "video", sample_frames) for uri in video_uris]
        results = await asyncio.gather(*loads)
        photos = [
            (uri, r) for uri, r in zip(photo_uris, results, strict=False) if not isinstance(r, MediaProblem)
        ]
        frames = results[-1] if video_uris and not isinstance(results[-1], MediaProblem) else None
        return ListingMedia(
            photos=np.stack([array for _, array in photos]) if photos else empty_batch(),
            photo_uris=tuple(uri for uri, _ in photos),
            frames=frames if frames is not None else empty_batch(),
            video_uri=video_uris[0] if frames is not None else None,
            problems=tuple(result for result in results if isinstance(result, MediaProblem)),
        )

    async def _load(
        self, uri: str, kind: MediaKind, decode: Callable[[bytes], ImageArray]
    ) -> ImageArray | MediaProblem:
        try:
            data = await self.fetch(uri, kind)
            return await asyncio.to_thread(decode, data)
        except MediaError as exc:
            return MediaProblem(uri, exc.reason, exc.message)
