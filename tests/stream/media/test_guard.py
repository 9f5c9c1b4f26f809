"""Tests for stream/media/guard.py: media downloads never reach a host that is not public or allow-listed.

A canary server on 127.0.0.1, not allow-listed, counts every request: each way around the guard must leave
it at zero. Private and public addresses are only ever handed out by a stub resolver, and every socket
connect is recorded, so nothing outside loopback is contacted.
"""

import ipaddress
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from stream.config import Settings
from stream.errors import MediaError, SettingsError
from stream.media.fetch import MediaFetcher
from stream.media.guard import GuardedResolver, HostPolicy, media_session, non_public_kind, numeric_address
from tests.conftest import free_port
from tests.stream.media.test_fetch import COLOURS, png


class Canary:
    """A local HTTP server nothing may reach; ``hits`` counts the requests it got anyway."""

    def __init__(self) -> None:
        self.port = free_port()
        self.hits = 0

    def app(self) -> web.Application:
        async def anything(_: web.Request) -> web.Response:
            self.hits += 1
            return web.Response(body=png(COLOURS["red"]), content_type="image/png")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", anything)
        return app


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    server = Canary()
    runner = await serve(server.app(), server.port)
    yield server
    await runner.cleanup()


@pytest.fixture
async def allowed_port() -> AsyncIterator[int]:
    """The allow-listed media server: photos, and a redirect to wherever ``?to=`` says."""

    async def photo(_: web.Request) -> web.Response:
        return web.Response(body=png(COLOURS["green"]), content_type="image/png")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/photo.png", photo)
    app.router.add_get("/redirect", redirect)
    port = free_port()
    runner = await serve(app, port)
    yield port
    await runner.cleanup()


@pytest.fixture
async def fetcher(allowed_port: int) -> AsyncIterator[MediaFetcher]:
    """A fetcher built as the worker builds it; only the media server (127.0.0.1:allowed_port) is allowed."""
    settings = Settings(media_port=allowed_port, media_timeout_s=2.0)
    async with media_session(HostPolicy.from_settings(settings)) as session:
        yield MediaFetcher.from_settings(session, settings)


async def refusal(fetcher: MediaFetcher, uri: str) -> MediaError:
    with pytest.raises(MediaError) as caught:
        await fetcher.fetch(uri, "image")
    return caught.value


async def test_the_allow_listed_media_server_is_fetched(fetcher: MediaFetcher, allowed_port: int) -> None:
    assert await fetcher.fetch(f"http://127.0.0.1:{allowed_port}/photo.png") == png(COLOURS["green"])


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ("http://127.0.0.1:{canary}/x.png", "forbidden_address"),
        ("http://localhost:{canary}/x.png", "forbidden_address"),
        ("http://LocalHost:{canary}/x.png", "forbidden_address"),
        ("http://0x7f000001:{canary}/x.png", "forbidden_address"),
        ("http://2130706433:{canary}/x.png", "forbidden_address"),
        ("http://127.1:{canary}/x.png", "forbidden_address"),
        ("http://0177.0.0.1:{canary}/x.png", "forbidden_address"),
        ("http://[::ffff:127.0.0.1]:{canary}/x.png", "forbidden_address"),
        ("http://user@127.0.0.1:{canary}/x.png", "forbidden_userinfo"),
        ("http://127.0.0.1:{allowed}@127.0.0.1:{canary}/x.png", "forbidden_userinfo"),
        ("http://127.0.0.1:{allowed}/redirect?to=http://127.0.0.1:{canary}/x.png", "forbidden_address"),
        ("http://127.0.0.1:{allowed}/redirect?to=http://localhost:{canary}/x.png", "forbidden_address"),
        ("http://127.0.0.1:{allowed}/redirect?to=http://0x7f000001:{canary}/x.png", "forbidden_address"),
        ("http://127.0.0.1:{allowed}/redirect?to=http://u:p@127.0.0.1:{canary}/x.png", "forbidden_userinfo"),
    ],
)
async def test_the_canary_is_never_contacted(
    fetcher: MediaFetcher, canary: Canary, allowed_port: int, form: str, reason: str
) -> None:
    uri = form.format(canary=canary.port, allowed=allowed_port)
    error = await refusal(fetcher, uri)
    assert canary.hits == 0
    assert error.reason == reason
    assert uri in error.message


class StubResolver(AbstractResolver):
    """Answers from a table instead of DNS, and counts the lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every socket connect attempted during the test; each is refused, so nothing leaves the machine."""
    attempts: list[object] = []

    def refuse(_: socket.socket, address: object) -> None:
        attempts.append(address)
        raise ConnectionRefusedError("connect refused by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"
STUB_DNS = {
    "intranet.test": ["10.0.0.7"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": [PUBLIC_V4, "127.0.0.1"],
    "ula.test": ["fd00::1"],
    "mapped.test": ["::ffff:192.168.0.1"],
    "public.test": [PUBLIC_V4, PUBLIC_V6],
}


@pytest.mark.parametrize(
    "uri",
    [
        "http://intranet.test/a.png",
        "http://metadata.test/latest/meta-data",
        "https://mixed.test/a.png",
        "http://ula.test/a.png",
        "http://mapped.test/a.png",
        "http://10.0.0.1/a.png",
        "http://192.168.1.20:6379/",
        "http://169.254.169.254/latest/meta-data",
        "http://0xa9fea9fe/latest/meta-data",
        "http://[fe80::1%25eth0]/a.png",
        "http://[::ffff:a9fe:a9fe]/a.png",
        "http://0.0.0.0:6379/",
        "http://[::]/a.png",
    ],
)
async def test_non_public_addresses_are_refused_before_any_connect(connects: list[object], uri: str) -> None:
    policy = HostPolicy.of([])
    async with media_session(policy, StubResolver(STUB_DNS)) as session:
        fetcher = MediaFetcher(
            session, policy=policy, timeout_s=2.0, max_bytes=1000, max_concurrency=1, listing_budget_s=2.0
        )
        error = await refusal(fetcher, uri)
    assert connects == []
    assert error.reason == "forbidden_address"
    assert "TOYFUSE_MEDIA_ALLOWED_HOSTS" in error.message


async def test_public_names_pass_the_resolver_with_every_address() -> None:
    stub = StubResolver(STUB_DNS)
    results = await GuardedResolver(HostPolicy.of([]), stub).resolve("public.test", 443)
    assert [result["host"] for result in results] == [PUBLIC_V4, PUBLIC_V6]


async def test_an_allow_listed_name_is_reached_at_the_address_that_was_checked(allowed_port: int) -> None:
    stub = StubResolver({"media.test": ["127.0.0.1"]})  # no real DNS knows media.test
    policy = HostPolicy.of([f"media.test:{allowed_port}"])
    async with media_session(policy, stub) as session:
        fetcher = MediaFetcher(
            session, policy=policy, timeout_s=2.0, max_bytes=10_000, max_concurrency=1, listing_budget_s=2.0
        )
        assert await fetcher.fetch(f"http://media.test:{allowed_port}/photo.png") == png(COLOURS["green"])
        assert (await refusal(fetcher, f"http://media.test:{free_port()}/photo.png")).reason == (
            "forbidden_address"  # the same name on another port is not allow-listed
        )
    assert stub.lookups == ["media.test", "media.test"]  # once per host and port, never again to connect


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-global"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("2001:db8::1", "private"),
        ("8.8.8.8", None),
        ("::ffff:8.8.8.8", None),
        (PUBLIC_V6, None),
    ],
)
def test_non_public_kind(address: str, kind: str | None) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("localhost", None),
        ("cdn.example.com", None),
    ],
)
def test_numeric_address_reads_every_numeric_form(host: str, address: str | None) -> None:
    found = numeric_address(host)
    assert (str(found) if found is not None else None) == address


def test_allow_list_entries() -> None:
    policy = HostPolicy.of(["media:18080", "CDN.Internal.", "[::1]:9000"])
    assert policy.allowed == {("media", 18080), ("cdn.internal", None), ("::1", 9000)}
    assert policy.allows("media", 18080) and not policy.allows("media", 16379)
    assert policy.allows("cdn.internal.", 443) and policy.allows("CDN.internal", 8443)


@pytest.mark.parametrize("entry", ["http://media:18080", "media/images", "user@media", "media:port"])
def test_an_allow_list_entry_that_is_no_host_is_refused(entry: str) -> None:
    with pytest.raises(SettingsError, match="TOYFUSE_MEDIA_ALLOWED_HOSTS"):
        HostPolicy.of([entry])


def test_the_media_server_is_always_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().media_allow_list == ("127.0.0.1:18080",)
    monkeypatch.setenv("TOYFUSE_MEDIA_ALLOWED_HOSTS", "cdn.internal, 10.0.0.5:8080,")
    settings = Settings(media_host="media", media_port=8080)
    assert settings.media_allow_list == ("media:8080", "cdn.internal", "10.0.0.5:8080")
    assert HostPolicy.from_settings(settings).allows("media", 8080)
