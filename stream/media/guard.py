"""Which hosts media downloads may reach: public addresses, and non-public ones only when allow-listed.

The check runs on the addresses a name resolves to, inside the HTTP client's resolver, so the connection
goes to exactly the addresses that were checked (a name is never resolved a second time). Hosts written
as numbers (``127.0.0.1``, ``0x7f000001``, ``2130706433``, ``127.1``) never reach a resolver; the fetcher
checks them with :meth:`HostPolicy.check_numeric` before each request.
"""

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from stream.config import Settings
from stream.errors import MediaError, SettingsError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Checked in this order, so an address is named by its most telling kind.
NON_PUBLIC_KINDS = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")
ALLOW_LIST_SETTING = "TOYFUSE_MEDIA_ALLOWED_HOSTS"


def non_public_kind(address: IPAddress) -> str | None:
    """Name what makes ``address`` unfit for media downloads (e.g. ``"loopback"``), None when it is public.

    IPv4 addresses embedded in IPv6 ones (IPv4-mapped ``::ffff:127.0.0.1``, 6to4) are judged as IPv4.

    >>> [non_public_kind(ipaddress.ip_address(a)) for a in ("::ffff:127.0.0.1", "8.8.8.8")]
    ['loopback', None]
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return non_public_kind(embedded)
    for kind in NON_PUBLIC_KINDS:
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-global"


def numeric_address(host: str) -> IPAddress | None:
    """The address a host written as numbers stands for, in every form the C library accepts, else None.

    ``AI_NUMERICHOST`` makes this a parse, never a DNS query.

    >>> str(numeric_address("0x7f000001")), str(numeric_address("127.1")), numeric_address("localhost")
    ('127.0.0.1', '127.0.0.1', None)
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return ipaddress.ip_address(infos[0][4][0])


def _normal_host(host: str) -> str:
    return host.lower().rstrip(".")


def parse_allowed(entry: str) -> tuple[str, int | None]:
    """Split an allow-list entry ``host``, ``host:port`` or ``[v6]:port`` into its host and port.

    Raises:
        SettingsError: The entry is not a bare host with an optional port.
    """
    try:
        url = URL(f"http://{entry}")
        host = url.raw_host
    except ValueError as exc:
        raise SettingsError(f"{ALLOW_LIST_SETTING} entry {entry!r} is not a host: {exc}") from exc
    if not host or url.user is not None or url.path not in ("", "/") or url.query_string or url.fragment:
        raise SettingsError(
            f"{ALLOW_LIST_SETTING} entry {entry!r} is not a host or host:port; write e.g. media:18080"
        )
    return _normal_host(host), url.explicit_port


@dataclass(frozen=True)
class HostPolicy:
    """The hosts (with an optional port) that media downloads may reach even at non-public addresses."""

    allowed: frozenset[tuple[str, int | None]]

    @classmethod
    def of(cls, entries: Iterable[str]) -> "HostPolicy":
        """Build a policy from entries such as ``media:18080`` or ``cdn.internal`` (any port)."""
        return cls(frozenset(parse_allowed(entry) for entry in entries))

    @classmethod
    def from_settings(cls, settings: Settings) -> "HostPolicy":
        """The policy of ``settings.media_allow_list`` (the catalog media server and the extra hosts)."""
        return cls.of(settings.media_allow_list)

    def allows(self, host: str, port: int) -> bool:
        """Return whether ``host:port`` is allow-listed, whatever addresses it has."""
        name = _normal_host(host)
        return (name, port) in self.allowed or (name, None) in self.allowed

    def check_address(self, host: str, port: int, address: IPAddress) -> None:
        """Refuse ``address`` (one that ``host`` resolved to) unless it is public or the host is allowed.

        Raises:
            MediaError: ``forbidden_address``.
        """
        kind = non_public_kind(address)
        if kind is not None and not self.allows(host, port):
            raise MediaError(
                "forbidden_address",
                f"{host}:{port} is at {address}, a {kind} address media downloads may not reach; serve media "
                f"from a public host or add {host}:{port} to {ALLOW_LIST_SETTING}",
            )

    def check_numeric(self, host: str, port: int) -> None:
        """Check a host written as numbers, which no resolver sees; names are left to the resolver.

        Raises:
            MediaError: ``forbidden_address``.
        """
        address = numeric_address(host)
        if address is not None:
            self.check_address(host, port, address)


class GuardedResolver(AbstractResolver):
    """Resolves once with ``inner`` and hands the connector the addresses only if every one passes."""

    def __init__(self, policy: HostPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and check each address (see :meth:`HostPolicy.check_address`).

        Raises:
            MediaError: ``forbidden_address`` if any address is refused, ``invalid_uri`` for a host that
                is no valid IDNA name.
        """
        try:
            results = await self._inner.resolve(host, port, family)
        except UnicodeError as exc:
            raise MediaError("invalid_uri", f"{host!r} is not a valid host name ({exc})") from exc
        for result in results:
            self._policy.check_address(host, port, ipaddress.ip_address(result["host"]))
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


def media_session(policy: HostPolicy, resolver: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """An HTTP session whose every connection passes ``policy``; call it inside the running event loop.

    Args:
        policy: Hosts allowed at non-public addresses.
        resolver: Resolves names before the check (default: the system resolver in a thread).

    Returns:
        A session for :class:`stream.media.fetch.MediaFetcher`; no proxy from the environment is used.
    """
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy, resolver))
    # No cookie from one media host is ever sent on: every download is a stranger's request.
    return aiohttp.ClientSession(connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
