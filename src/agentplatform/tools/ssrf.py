"""The SSRF guard for ``http_fetch``: which URLs it may touch, and pinning what was vetted.

A URL is vetted in three steps, each refusing with a reason the model can read
(``URLRefused``):

1. **Parse strictly** (``parse_url``): http/https only; no user names or passwords, no
   backslashes or control characters (spaces in the path are percent-encoded). The host is
   IDNA/UTS-46 normalized (so ``①②⑦。0。0。1`` becomes ``127.0.0.1``), a trailing dot
   dropped, percent signs (encoded hosts, IPv6 zone ids) refused. A host whose last label is
   numeric is read the way ``inet_aton`` reads it, and anything but a canonical dotted quad
   (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, ``0``) is refused, naming the
   address it means.
2. **Resolve first** (``AddressGuard.vet``): every address the name resolves to must pass
   ``address_problem`` — a table of loopback, private, link-local, carrier-grade NAT,
   multicast, reserved, documentation and cloud-metadata ranges, with IPv4-mapped,
   IPv4-compatible, 6to4, Teredo and NAT64 addresses judged by the IPv4 address they
   embed, and anything else not globally routable refused. Only ports 80 and 443 are open.
   Hosts on the operator's allow-list (``host`` or ``host:port``) skip the address and
   port rules, but are still resolved and pinned.
3. **Pin** (``PinnedBackend``): an httpcore network backend whose ``connect_tcp`` ignores
   what the host name resolves to *now* and connects to the addresses vetted in step 2.
   httpcore still sends ``Host: <name>`` and, for https, uses the name for SNI and
   certificate checks (it passes the URL's host as ``server_hostname`` to ``start_tls``),
   so DNS rebinding between check and connect cannot move the connection.

The fetcher runs the three steps again for every redirect hop.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import quote, urlsplit

import httpcore2
import idna

from agentplatform.tools.base import ToolError

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; the seam for the DNS lookup (tests map names to IPs)."""

MAX_URL_CHARS = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
OPEN_PORTS = frozenset({80, 443})

CLOUD_METADATA: frozenset[Address] = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure wire server (a public address)
        "fd00:ec2::254",  # AWS IPv6
        "fd00:ec2::23",  # AWS EKS pod identity, IPv6
    )
)

_V4_RANGES = tuple(
    (IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a reserved (IETF protocol) address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a reserved (6to4 relay) address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a reserved (benchmarking) address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_V6_RANGES = tuple(
    (IPv6Network(net), why)
    for net, why in (
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a reserved (discard-only) address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")

_HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?:\.(?!-)[a-z0-9_-]{1,63})*")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_INET_ATON_PART = re.compile(r"0x(?P<hex>[0-9a-f]*)|(?P<oct>0[0-7]*)|(?P<dec>[1-9][0-9]*)")
_URL_SAFE = "/%!$&'()*+,;=:@-._~"


class URLRefused(ToolError):
    """The guard will not fetch this URL; ``reason`` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"Refused to fetch {url!r}: {reason}.")
        self.reason = reason


def _embedded_v4(address: IPv6Address) -> tuple[str, list[IPv4Address]] | None:
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped", [address.ipv4_mapped]
    if address.sixtofour is not None:
        return "a 6to4", [address.sixtofour]
    if address.teredo is not None:
        return "a Teredo", list(address.teredo)
    if address in _NAT64:
        return "a NAT64", [IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _IPV4_COMPATIBLE:
        return "an IPv4-compatible", [IPv4Address(int(address))]
    return None


def address_problem(address: Address) -> str | None:
    """Why connecting to ``address`` is refused, or ``None`` for a public address."""
    if isinstance(address, IPv6Address) and address.scope_id:
        address = IPv6Address(int(address))
    if address in CLOUD_METADATA:
        return "a cloud metadata address"
    if isinstance(address, IPv4Address):
        why = next((why for net, why in _V4_RANGES if address in net), None)
    else:
        why = next((why for net, why in _V6_RANGES if address in net), None)
        embedded = None if why else _embedded_v4(address)
        if embedded is not None:
            kind, inner = embedded
            problems = [(v4, address_problem(v4)) for v4 in inner]
            bad = "; ".join(f"{v4}, {problem}" for v4, problem in problems if problem)
            return f"{kind} IPv6 address embedding {bad}" if bad else None
    if why is None and not address.is_global:
        why = "not a globally routable address"
    return why


def _inet_aton(host: str) -> IPv4Address | None:
    """Read ``host`` as C's ``inet_aton`` would (1-4 parts, octal and hex allowed)."""
    parts = host.split(".")
    if len(parts) > 4:
        return None
    values: list[int] = []
    for part in parts:
        match = _INET_ATON_PART.fullmatch(part)
        if match is None:
            return None
        if match["hex"] is not None:
            values.append(int(match["hex"] or "0", 16))
        elif match["oct"] is not None:
            values.append(int(match["oct"], 8))
        else:
            values.append(int(match["dec"]))
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (4 - len(head)):
        return None
    return IPv4Address(sum(v << (8 * (3 - i)) for i, v in enumerate(head)) + last)


def normalize_host(host: str) -> tuple[str, Address | None]:
    """The canonical ASCII form of a URL host, and its address when it is an IP literal."""
    if "%" in host:
        raise ValueError("percent-encoded hosts and IPv6 zone ids are not allowed")
    if ":" in host:
        try:
            v6 = IPv6Address(host)
        except ValueError:
            raise ValueError("the host is not a valid IPv6 address") from None
        return str(v6), v6
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise ValueError("the host is not a valid international domain name") from None
    host = host.lower()
    host = host.removesuffix(".")
    if len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise ValueError(f"{host!r} is not a valid host name")
    if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return host, None
    v4 = _inet_aton(host)
    if v4 is None:
        raise ValueError(f"{host!r} is neither a host name nor an IPv4 address")
    if str(v4) != host:
        problem = address_problem(v4)
        suffix = f", {problem}" if problem else ""
        raise ValueError(f"{host!r} is a non-standard numeric form of {v4}{suffix}")
    return host, v4


@dataclass(frozen=True, slots=True)
class ParsedURL:
    scheme: str
    host: str  # canonical ASCII; IPv6 without brackets
    port: int
    target: str  # percent-encoded path and query
    address: Address | None  # set when the host is an IP literal

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


def parse_url(url: str) -> ParsedURL:
    """Parse and normalize ``url`` without touching the network, or raise ``URLRefused``."""
    if len(url) > MAX_URL_CHARS:
        raise URLRefused(url[:80] + "…", f"the URL is longer than {MAX_URL_CHARS} characters")
    if any(not c.isprintable() or c == "\\" for c in url):
        raise URLRefused(url, "the URL contains control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise URLRefused(url, f"the URL is malformed ({exc})") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise URLRefused(url, "only http:// and https:// URLs can be fetched")
    if "@" in parts.netloc:
        raise URLRefused(url, "URLs with a user name or password are not allowed")
    if not parts.hostname:
        raise URLRefused(url, "the URL has no host")
    try:
        host, address = normalize_host(parts.hostname)
    except ValueError as exc:
        raise URLRefused(url, str(exc)) from None
    target = quote(parts.path or "/", safe=_URL_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_URL_SAFE + "?")
    return ParsedURL(
        parts.scheme, host, DEFAULT_PORTS[parts.scheme] if port is None else port, target, address
    )


@dataclass(frozen=True, slots=True)
class Target:
    """A vetted URL and the addresses the connection is pinned to."""

    url: ParsedURL
    addresses: tuple[str, ...]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, via the event loop's ``getaddrinfo``."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _allow_entry(entry: str) -> tuple[str, int | None]:
    parts = urlsplit("//" + entry.strip())
    if not parts.hostname or parts.path or "@" in parts.netloc:
        raise ValueError(f"allow-list entry {entry!r} is not 'host' or 'host:port'")
    return normalize_host(parts.hostname)[0], parts.port


class AddressGuard:
    """Vets URLs: parse, resolve, refuse non-public addresses unless the host is allowed."""

    def __init__(
        self, *, allow_hosts: Iterable[str] = (), resolver: Resolver | None = None
    ) -> None:
        self._allowed = frozenset(_allow_entry(entry) for entry in allow_hosts)
        self._resolve = resolver or system_resolver

    def is_allowed(self, host: str, port: int) -> bool:
        return (host, None) in self._allowed or (host, port) in self._allowed

    async def vet(self, url: str) -> Target:
        parsed = parse_url(url)
        addresses = await self._addresses(url, parsed)
        if not self.is_allowed(parsed.host, parsed.port):
            for address in addresses:
                problem = address_problem(address)
                if problem is None:
                    continue
                if parsed.address is not None:
                    raise URLRefused(url, f"{address} is {problem}")
                raise URLRefused(url, f"{parsed.host} resolves to {address}, {problem}")
            if parsed.port not in OPEN_PORTS:
                raise URLRefused(url, f"port {parsed.port} is not allowed (only 80 and 443)")
        return Target(parsed, tuple(str(address) for address in addresses))

    async def _addresses(self, url: str, parsed: ParsedURL) -> list[Address]:
        if parsed.address is not None:
            return [parsed.address]
        try:
            answers = await self._resolve(parsed.host, parsed.port)
        except OSError as exc:
            raise URLRefused(url, f"{parsed.host} could not be resolved ({exc})") from None
        try:
            addresses = [ip_address(answer) for answer in answers]
        except ValueError:
            raise URLRefused(url, f"{parsed.host} resolved to an invalid address") from None
        if not addresses:
            raise URLRefused(url, f"{parsed.host} resolves to no address")
        return addresses


class PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Connects only to vetted addresses: ``connect_tcp(host)`` dials ``pin(target)``'s IPs."""

    def __init__(self) -> None:
        self._pins: dict[str, tuple[str, ...]] = {}
        self._backend = httpcore2.AnyIOBackend()

    def pin(self, target: Target) -> None:
        self._pins[target.url.host] = target.addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = self._pins.get(host)
        if not addresses:
            raise httpcore2.ConnectError(f"{host} was not vetted")
        error: Exception = httpcore2.ConnectError(f"no address of {host} answered")
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("Unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
