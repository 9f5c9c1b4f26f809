"""Tests for stream/media/fetch.py against a real aiohttp server on 127.0.0.1."""

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
from aiohttp import web
from PIL import Image
from prometheus_client import REGISTRY

from stream.config import Settings
from stream.contracts.shapes import IMAGE_SIZE
from stream.errors import MediaError
from stream.media.fetch import MediaFetcher, MediaProblem, check_content_type, check_uri
from stream.media.guard import HostPolicy, media_session
from tests.conftest import free_port
from tests.stream.media.test_video import make_clip

MAX_BYTES = 50_000
TIMEOUT_S = 0.5
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def png(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class MediaServer:
    """What the test server saw: paths requested and the most requests in flight at once."""

    url: str
    requested: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def static(body: bytes, content_type: str) -> Handler:
    async def handle(_: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type=content_type)

    return handle


def redirect(location: str) -> Handler:
    async def handle(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(location)

    return handle


def build_app(server: MediaServer) -> web.Application:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=png(COLOURS[request.match_info["colour"]]), content_type="image/png")

    async def clip(_: web.Request) -> web.Response:
        return web.Response(body=make_clip(frames=12, fps=12), content_type="video/mp4")

    async def chunked_large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b"\0" * 10_000)
        return response

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(30):
                await response.write(b"\0")
                await asyncio.sleep(0.1)
        except ConnectionResetError:
            pass  # the client gave up, as it should
        return response

    async def slow(request: web.Request) -> web.Response:
        server.in_flight += 1
        server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            await asyncio.sleep(float(request.query["s"]))
        finally:
            server.in_flight -= 1
        return web.Response(body=png(COLOURS["red"]), content_type="image/png")

    async def hops(request: web.Request) -> web.Response:
        left = int(request.match_info["left"])
        if left == 0:
            return web.Response(body=png(COLOURS["red"]), content_type="image/png")
        raise web.HTTPTemporaryRedirect(f"{left - 1}.png")  # relative, as servers may send

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        server.requested.append(request.path_qs)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/images/{colour}.png", image)
    app.router.add_get("/videos/clip.mp4", clip)
    app.router.add_get("/large.png", static(b"\0" * (MAX_BYTES + 1), "image/png"))
    app.router.add_get("/chunked.png", chunked_large)
    app.router.add_get("/slow.png", slow)
    app.router.add_get("/trickle.png", trickle)
    app.router.add_get("/page.html", static(b"<html>sold out</html>", "text/html"))
    app.router.add_get("/garbage.png", static(b"not a png", "image/png"))
    app.router.add_get("/untyped.png", static(png(COLOURS["blue"]), "application/octet-stream"))
    app.router.add_get("/moved.png", redirect("/images/green.png"))
    app.router.add_get("/to-ftp.png", redirect("ftp://127.0.0.1/x.png"))
    app.router.add_get("/hops/{left}.png", hops)
    return app


@pytest.fixture
async def media_server() -> AsyncIterator[MediaServer]:
    port = free_port()
    server = MediaServer(url=f"http://127.0.0.1:{port}")
    runner = web.AppRunner(build_app(server))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield server
    await runner.cleanup()


# These tests are about downloading, not about the guard (tests/stream/media/test_guard.py): any port of
# 127.0.0.1 is allowed.
LOOPBACK_ALLOWED = HostPolicy.of(["127.0.0.1"])


@asynccontextmanager
async def loopback_fetcher(timeout_s: float) -> AsyncIterator[MediaFetcher]:
    """A fetcher allowed to reach the test server, two downloads at a time."""
    async with media_session(LOOPBACK_ALLOWED) as session:
        yield MediaFetcher(
            session,
            policy=LOOPBACK_ALLOWED,
            timeout_s=timeout_s,
            max_bytes=MAX_BYTES,
            max_concurrency=2,
            listing_budget_s=10.0,
        )


@pytest.fixture
async def fetcher() -> AsyncIterator[MediaFetcher]:
    async with loopback_fetcher(TIMEOUT_S) as made:
        yield made


async def fetch_failure(fetcher: MediaFetcher, uri: str) -> MediaError:
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(uri)
    return caught.value


async def test_fetch_returns_the_body(media_server: MediaServer, fetcher: MediaFetcher) -> None:
    assert await fetcher.fetch(f"{media_server.url}/images/red.png", "image") == png(COLOURS["red"])


async def test_fetch_follows_redirects(media_server: MediaServer, fetcher: MediaFetcher) -> None:
    assert await fetcher.fetch(f"{media_server.url}/moved.png") == png(COLOURS["green"])


async def test_fetch_accepts_octet_stream(media_server: MediaServer, fetcher: MediaFetcher) -> None:
    assert await fetcher.fetch(f"{media_server.url}/untyped.png", "image") == png(COLOURS["blue"])


@pytest.mark.parametrize(
    ("path", "reason", "message"),
    [
        ("/missing.png", "http_status", "HTTP 404"),
        ("/large.png", "too_large", f"declares {MAX_BYTES + 1} bytes"),
        ("/chunked.png", "too_large", f"sent more than {MAX_BYTES} bytes"),
        ("/slow.png?s=1.5", "timeout", "TOYFUSE_MEDIA_TIMEOUT_S"),
        ("/trickle.png", "timeout", f"longer than {TIMEOUT_S:g} s"),
        ("/page.html", "content_type", "'text/html'"),
        ("/to-ftp.png", "unsupported_scheme", "ftp://127.0.0.1/x.png"),
    ],
)
async def test_fetch_failures_have_a_reason(
    media_server: MediaServer, fetcher: MediaFetcher, path: str, reason: str, message: str
) -> None:
    error = await fetch_failure(fetcher, media_server.url + path)
    assert error.reason == reason
    assert message in error.message
    assert media_server.url + path.split("?")[0] in error.message


async def test_fetch_checks_the_type_against_the_kind(
    media_server: MediaServer, fetcher: MediaFetcher
) -> None:
    with pytest.raises(MediaError, match="'image/png', not as video") as caught:
        await fetcher.fetch(f"{media_server.url}/images/red.png", "video")
    assert caught.value.reason == "content_type"


@pytest.mark.parametrize(
    "uri",
    ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "images/a.png", "http://", "data:,x", "http://[::1"],
)
async def test_fetch_refuses_other_schemes_without_a_request(fetcher: MediaFetcher, uri: str) -> None:
    assert (await fetch_failure(fetcher, uri)).reason == "unsupported_scheme"


async def test_fetch_reports_a_refused_connection(fetcher: MediaFetcher) -> None:
    assert (await fetch_failure(fetcher, f"http://127.0.0.1:{free_port()}/a.png")).reason == "connection"


async def test_fetch_caps_downloads_in_flight(media_server: MediaServer) -> None:
    uris = [f"{media_server.url}/slow.png?s=0.1&n={n}" for n in range(6)]
    # The cap is measured here, not the timeout: on a loaded CI machine one 0.1 s download passed 0.5 s.
    async with loopback_fetcher(timeout_s=30.0) as fetcher:
        bodies = await asyncio.gather(*(fetcher.fetch(uri) for uri in uris))
    assert len(bodies) == 6
    assert media_server.most_in_flight == 2


async def test_listing_media_keeps_what_decodes_and_reports_the_rest(
    media_server: MediaServer, fetcher: MediaFetcher
) -> None:
    base = media_server.url
    images = [
        f"{base}/images/red.png",
        f"{base}/missing.png",
        f"{base}/garbage.png",
        f"{base}/images/blue.png",
    ]
    media = await fetcher.fetch_listing_media(
        [*images, f"{base}/images/green.png"], [f"{base}/videos/clip.mp4", f"{base}/videos/second.mp4"]
    )

    assert media.photo_uris == (images[0], images[3])
    assert media.photos.shape == (2, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert media.photos.dtype == np.uint8
    assert tuple(media.photos[0, 0, 0]) == COLOURS["red"]
    assert tuple(media.photos[1, 0, 0]) == COLOURS["blue"]
    assert media.frames.shape == (8, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert media.video_uri == f"{base}/videos/clip.mp4"
    assert [(p.uri, p.reason) for p in media.problems] == [
        (images[1], "http_status"),
        (images[2], "undecodable_image"),
    ]
    assert "/images/green.png" not in media_server.requested
    assert "/videos/second.mp4" not in media_server.requested


async def test_listing_media_without_usable_media(media_server: MediaServer, fetcher: MediaFetcher) -> None:
    media = await fetcher.fetch_listing_media([], [f"{media_server.url}/images/red.png"])

    assert media.photos.shape == (0, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert media.photo_uris == ()
    assert media.frames.shape == (0, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert media.video_uri is None
    (problem,) = media.problems
    assert problem == MediaProblem(f"{media_server.url}/images/red.png", "content_type", problem.message)


async def test_from_settings_uses_the_media_limits(media_server: MediaServer) -> None:
    settings = Settings(media_max_bytes=10, media_allowed_hosts="127.0.0.1")
    async with media_session(HostPolicy.from_settings(settings)) as session:
        error = await fetch_failure(
            MediaFetcher.from_settings(session, settings), f"{media_server.url}/images/red.png"
        )
    assert error.reason == "too_large"
    assert "10-byte limit (TOYFUSE_MEDIA_MAX_BYTES)" in error.message


@pytest.mark.parametrize(
    ("content_type", "kind", "accepted"),
    [
        ("image/jpeg", "image", True),
        ("IMAGE/WEBP", "image", True),
        ("video/webm", "video", True),
        ("application/mp4", "video", True),
        ("application/octet-stream", "video", True),
        ("video/mp4", None, True),
        ("video/mp4", "image", False),
        ("text/html", None, False),
        ("application/json", "image", False),
    ],
)
def test_check_content_type(content_type: str, kind: str | None, accepted: bool) -> None:
    if accepted:
        check_content_type("http://x/y", content_type, kind)  # type: ignore[arg-type]
    else:
        with pytest.raises(MediaError):
            check_content_type("http://x/y", content_type, kind)  # type: ignore[arg-type]


def test_check_uri_accepts_http_and_https() -> None:
    assert check_uri("https://cdn.example.com/a b.png").hostname == "cdn.example.com"
    assert check_uri("HTTPS://cdn.example.com/a.png").scheme == "https"
    assert check_uri("http://127.0.0.1:8080/x.mp4").port == 8080


async def test_a_host_that_is_no_valid_idna_name_is_a_media_problem(fetcher: MediaFetcher) -> None:
    media = await fetcher.fetch_listing_media(["http://a..b/x.png"], [])  # raised UnicodeError
    assert [(p.uri, p.reason) for p in media.problems] == [("http://a..b/x.png", "invalid_uri")]


@pytest.fixture
async def budget_fetcher(media_server: MediaServer) -> AsyncIterator[MediaFetcher]:
    """Slow downloads may take 5 s each, two at a time, but a listing's media only 0.5 s in all."""
    port = int(media_server.url.rsplit(":", 1)[1])
    settings = Settings(
        media_port=port, media_timeout_s=5.0, media_max_concurrency=2, media_listing_budget_s=0.5
    )
    async with media_session(HostPolicy.from_settings(settings)) as session:
        yield MediaFetcher.from_settings(session, settings)


async def test_a_listing_keeps_what_arrived_within_its_media_budget(
    media_server: MediaServer, budget_fetcher: MediaFetcher
) -> None:
    fast, slow = f"{media_server.url}/images/blue.png", f"{media_server.url}/slow.png?s=2"
    media = await budget_fetcher.fetch_listing_media([fast, slow], [])
    assert media.photo_uris == (fast,)
    (problem,) = media.problems
    assert (problem.uri, problem.reason) == (slow, "timeout")
    assert "0.5 s media budget (TOYFUSE_MEDIA_LISTING_BUDGET_S)" in problem.message


async def test_slow_media_of_a_batch_cannot_hold_back_a_text_only_listing(
    media_server: MediaServer, budget_fetcher: MediaFetcher
) -> None:
    slow = [[f"{media_server.url}/slow.png?s=2&listing={n}&photo={p}" for p in range(4)] for n in range(16)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    # As the listing pipeline fetches a batch: every listing's media at once.
    results = await asyncio.gather(
        *(budget_fetcher.fetch_listing_media(images, []) for images in [*slow, []])
    )
    assert loop.time() - started < 1.5  # without a budget: 64 downloads, 2 at a time, 2 s each
    assert results[-1].problems == ()
    assert {p.reason for media in results[:-1] for p in media.problems} == {"timeout"}


async def test_fetch_follows_up_to_five_redirects(media_server: MediaServer, fetcher: MediaFetcher) -> None:
    assert await fetcher.fetch(f"{media_server.url}/hops/5.png") == png(COLOURS["red"])
    error = await fetch_failure(fetcher, f"{media_server.url}/hops/6.png")
    assert error.reason == "too_many_redirects"
    assert media_server.requested[-6:] == [f"/hops/{left}.png" for left in range(6, 0, -1)]  # never 0


def media_counts() -> dict[str, float]:
    """The media counters, by sample name and labels."""
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for metric in REGISTRY.collect()
        if metric.name in ("toyfuse_media_fetches", "toyfuse_media_fetched_bytes")
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: value - before.get(name, 0.0) for name, value in after.items() if value != before.get(name)}


async def test_each_download_is_counted_by_kind_and_outcome_with_its_bytes(
    media_server: MediaServer, fetcher: MediaFetcher
) -> None:
    base, before = media_server.url, media_counts()

    await fetcher.fetch_listing_media(
        [f"{base}/images/red.png", f"{base}/missing.png", f"{base}/garbage.png", f"{base}/page.html"],
        [f"{base}/videos/clip.mp4"],
    )

    photo_bytes = len(png(COLOURS["red"])) + len(b"not a png")  # what arrived, decodable or not
    assert moved(before, media_counts()) == {
        "toyfuse_media_fetches_total[('kind', 'photo'), ('outcome', 'ok')]": 1,
        "toyfuse_media_fetches_total[('kind', 'photo'), ('outcome', 'http_status')]": 1,
        "toyfuse_media_fetches_total[('kind', 'photo'), ('outcome', 'undecodable_image')]": 1,
        "toyfuse_media_fetches_total[('kind', 'photo'), ('outcome', 'content_type')]": 1,
        "toyfuse_media_fetches_total[('kind', 'video'), ('outcome', 'ok')]": 1,
        "toyfuse_media_fetched_bytes_total[('kind', 'photo')]": photo_bytes,
        "toyfuse_media_fetched_bytes_total[('kind', 'video')]": len(make_clip(frames=12, fps=12)),
    }
