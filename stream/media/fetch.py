"""Safe async download of a listing's photos and video, decoded into image encoder inputs."""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

import aiohttp
import numpy as np
from yarl import URL

from stream import metrics
from stream.config import Settings
from stream.contracts.shapes import IMAGE_SIZE, MAX_PHOTOS
from stream.errors import MediaError, MediaFailure
from stream.media.guard import HostPolicy
from stream.media.images import ImageArray, preprocess_image
from stream.media.video import sample_frames

MediaKind = Literal["image", "video"]
METRIC_KINDS: dict[MediaKind, str] = {"image": "photo", "video": "video"}  # the metrics' kind label

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
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
    """Parse ``uri`` and accept only absolute http(s) URLs, without userinfo, whose host is a valid name.

    Raises:
        MediaError: ``unsupported_scheme`` for any other URI, ``forbidden_userinfo`` for ``user@host``,
            ``invalid_uri`` for a host that is no valid IDNA name (``a..b``).
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
    try:
        url = URL(uri)
    except ValueError as exc:
        raise MediaError("invalid_uri", f"{uri!r} is not a valid URL ({exc}); check the media URI") from exc
    checked_url(url)
    return parts


def checked_url(url: URL) -> URL:
    """Return ``url``, the very object the client will request, once it is http(s) without userinfo.

    Checked on the client's own parse of the URL, so no difference between two URL parsers can slip a
    userinfo or a second host past the check.

    Raises:
        MediaError: ``unsupported_scheme``, ``forbidden_userinfo`` or ``invalid_uri``.
    """
    host = url.raw_host
    if url.scheme not in SCHEMES or not host:
        raise MediaError("unsupported_scheme", f"{str(url)!r} is not an http(s) URL; send http(s) media URIs")
    if url.user is not None or url.password is not None:
        raise MediaError(
            "forbidden_userinfo", f"{url} carries a user name or password; media URIs may not (user@host)"
        )
    if ":" not in host:  # IPv6 literals are no names
        try:
            host.encode("idna")
        except UnicodeError as exc:
            raise MediaError(
                "invalid_uri", f"{host!r} is not a valid host name ({exc}); check the media URI"
            ) from exc
    return url


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
    """Downloads media over http(s) with a deadline, a size limit and a cap on parallel downloads.

    Only hosts that ``policy`` lets through are contacted; ``session`` must come from
    :func:`stream.media.guard.media_session` with the same policy, whose resolver checks every name.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        policy: HostPolicy,
        timeout_s: float,
        max_bytes: int,
        max_concurrency: int,
        listing_budget_s: float,
    ) -> None:
        self._session = session
        self._policy = policy
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._slots = asyncio.Semaphore(max_concurrency)
        self._budget_s = listing_budget_s

    @classmethod
    def from_settings(cls, session: aiohttp.ClientSession, settings: Settings) -> "MediaFetcher":
        """Build a fetcher with the ``media_*`` limits and allow-list of ``settings``."""
        return cls(
            session,
            policy=HostPolicy.from_settings(settings),
            timeout_s=settings.media_timeout_s,
            max_bytes=settings.media_max_bytes,
            max_concurrency=settings.media_max_concurrency,
            listing_budget_s=settings.media_listing_budget_s,
        )

    async def fetch(self, uri: str, kind: MediaKind | None = None) -> bytes:
        """Download ``uri`` whole, refusing anything slow, large, non-http(s), non-public or mistyped.

        Redirects are followed here, at most ``MAX_REDIRECTS``, each hop checked like ``uri``.

        Args:
            uri: An http(s) URL.
            kind: What the URI should hold; its content type is checked against it (None: image or video).

        Returns:
            The response body.

        Raises:
            MediaError: ``unsupported_scheme``, ``invalid_uri``, ``forbidden_userinfo``,
                ``forbidden_address``, ``too_many_redirects``, ``connection``, ``timeout``, ``http_status``,
                ``content_type`` or ``too_large``.
        """
        check_uri(uri)
        async with self._slots:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._follow(uri, kind)
            except TimeoutError as exc:
                raise MediaError(
                    "timeout", f"{uri} took longer than {self._timeout_s:g} s (TOYFUSE_MEDIA_TIMEOUT_S)"
                ) from exc
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                raise MediaError("connection", f"{uri} could not be downloaded: {exc!r}") from exc

    async def _follow(self, uri: str, kind: MediaKind | None) -> bytes:
        url = URL(uri)
        for _ in range(MAX_REDIRECTS + 1):
            async with await self._open(uri, url) as response:
                if response.status not in REDIRECT_STATUSES:
                    return await self._body(uri, response, kind)
                url = self._next_hop(uri, url, response)
        raise MediaError(
            "too_many_redirects", f"{uri} redirects more than {MAX_REDIRECTS} times; link the file itself"
        )

    async def _open(self, uri: str, url: URL) -> aiohttp.ClientResponse:
        """Request one hop; the guard's refusals name the original URI and the hop."""
        try:
            self._policy.check_numeric(url.raw_host or "", url.port or 0)
            return await self._session.get(url, allow_redirects=False)
        except MediaError as exc:
            where = uri if str(url) == uri else f"{uri} (redirected to {url})"
            raise MediaError(exc.reason, f"{where}: {exc.message}") from exc

    def _next_hop(self, uri: str, url: URL, response: aiohttp.ClientResponse) -> URL:
        location = response.headers.get("Location")
        if not location:
            raise MediaError("http_status", f"{uri} answered HTTP {response.status} without a Location")
        try:
            return checked_url(url.join(URL(location)))
        except ValueError as exc:
            raise MediaError("invalid_uri", f"{uri} redirects to {location!r}, which is no URL") from exc
        except MediaError as exc:
            raise MediaError(exc.reason, f"{uri} redirects to {location}: {exc.message}") from exc

    async def _body(self, uri: str, response: aiohttp.ClientResponse, kind: MediaKind | None) -> bytes:
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

        Downloads stop when the listing's media budget is spent: what arrived is used, the rest is a
        ``timeout`` problem. Decoding runs in worker threads. A photo or video that fails is reported in
        ``problems`` and left out; the others are still returned.

        Args:
            images: Photo URIs in producer order; those past ``MAX_PHOTOS`` are ignored.
            videos: Video URIs; only the first is used.

        Returns:
            The decoded media and the problems met.
        """
        photo_uris, video_uris = list(images[:MAX_PHOTOS]), list(videos[:1])
        deadline = asyncio.get_running_loop().time() + self._budget_s
        loads = [self._load(uri, "image", preprocess_image, deadline) for uri in photo_uris]
        loads += [self._load(uri, "video", sample_frames, deadline) for uri in video_uris]
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
        self, uri: str, kind: MediaKind, decode: Callable[[bytes], ImageArray], deadline: float
    ) -> ImageArray | MediaProblem:
        """Download and decode one photo or video, counted by kind and outcome (ok, or the problem's reason)."""
        label = METRIC_KINDS[kind]
        try:
            data = await self._download(uri, kind, deadline)
            metrics.media_fetched_bytes_total.labels(label).inc(len(data))
            decoded = await asyncio.to_thread(decode, data)
        except MediaError as exc:
            metrics.media_fetches_total.labels(label, exc.reason).inc()
            return MediaProblem(uri, exc.reason, exc.message)
        metrics.media_fetches_total.labels(label, "ok").inc()
        return decoded

    async def _download(self, uri: str, kind: MediaKind, deadline: float) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await self.fetch(uri, kind)
        except TimeoutError as exc:
            raise MediaError(
                "timeout",
                f"{uri} did not arrive within the listing's {self._budget_s:g} s media budget "
                "(TOYFUSE_MEDIA_LISTING_BUDGET_S)",
            ) from exc
