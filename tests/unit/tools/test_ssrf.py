"""The SSRF guard: a corpus of URLs that must all be refused, the address policy, the
allow-list, and the pinned network backend.

Redirect-hop refusals run against real local servers in ``test_http_fetch.py``. DNS goes
through the ``resolver`` seam (a name → address table), except ``localhost``, which is looked
up for real.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from ipaddress import ip_address

import httpcore2
import pytest

from agentplatform.tools.base import ToolContext, ToolRegistry
from agentplatform.tools.http_fetch import HttpFetchTool
from agentplatform.tools.ssrf import (
    AddressGuard,
    ParsedURL,
    PinnedBackend,
    Target,
    URLRefused,
    address_problem,
    system_resolver,
)

CONTEXT = ToolContext(user_id="u", conversation_id="c", run_id="r")

NAMES: dict[str, list[str]] = {
    "evil.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "10.0.0.5"],  # one bad answer is enough to refuse
    "v6loop.test": ["::1"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "cgnat.test": ["100.64.1.2"],
    "linklocal6.test": ["fe80::1%1"],
    "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "intranet.test": ["10.1.2.3"],
}


async def table_resolver(host: str, port: int) -> list[str]:
    if host in NAMES:
        return NAMES[host]
    if host == "localhost":
        return await system_resolver(host, port)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def row(url: str, reason: str, category: str) -> object:
    return pytest.param(url, reason, id=f"{category}:{url}")


CORPUS = [
    # schemes
    row("file:///etc/passwd", "only http:// and https://", "scheme"),
    row("gopher://127.0.0.1:70/_GET%20/", "only http:// and https://", "scheme"),
    row("ftp://example.com/", "only http:// and https://", "scheme"),
    row("dict://127.0.0.1:11211/stat", "only http:// and https://", "scheme"),
    row("javascript:alert(1)", "only http:// and https://", "scheme"),
    # IPv4 literals
    row("http://127.0.0.1/", "127.0.0.1 is a loopback address", "ipv4"),
    row("http://127.255.255.254:80/", "is a loopback address", "ipv4"),
    row("http://10.0.0.1/", "10.0.0.1 is a private address", "ipv4"),
    row("http://172.16.0.1/", "is a private address", "ipv4"),
    row("http://172.31.255.255/", "is a private address", "ipv4"),
    row("http://192.168.1.1/", "is a private address", "ipv4"),
    row("http://169.254.1.1/", "is a link-local address", "ipv4"),
    row("http://100.64.0.1/", "is a carrier-grade NAT address", "ipv4"),
    row("http://0.0.0.0/", "is an unspecified ('this network') address", "ipv4"),
    row("http://224.0.0.1/", "is a multicast address", "ipv4"),
    row("http://255.255.255.255/", "is the broadcast address", "ipv4"),
    row("http://240.0.0.1/", "is a reserved address", "ipv4"),
    row("http://192.0.2.1/", "is a documentation address", "ipv4"),
    row("http://198.18.0.1/", "is a reserved (benchmarking) address", "ipv4"),
    # cloud metadata
    row("http://169.254.169.254/latest/meta-data/", "is a cloud metadata address", "metadata"),
    row("http://169.254.170.2/v2/credentials", "is a cloud metadata address", "metadata"),
    row("http://100.100.100.200/latest/meta-data/", "is a cloud metadata address", "metadata"),
    row("https://192.0.0.192/opc/v2/instance/", "is a cloud metadata address", "metadata"),
    row("http://[fd00:ec2::254]/latest/meta-data/", "is a cloud metadata address", "metadata"),
    # IPv6 literals
    row("http://[::1]/", "::1 is a loopback address", "ipv6"),
    row("http://[::]/", ":: is the unspecified address", "ipv6"),
    row("http://[fc00::1]/", "is a private (unique local) address", "ipv6"),
    row("http://[fe80::1]/", "is a link-local address", "ipv6"),
    row("http://[ff02::1]/", "is a multicast address", "ipv6"),
    row("http://[2001:db8::1]/", "is a documentation address", "ipv6"),
    row("http://[fe80::1%25eth0]/", "IPv6 zone ids are not allowed", "ipv6"),
    # IPv6 embedding IPv4
    row("http://[::ffff:127.0.0.1]/", "IPv4-mapped IPv6 address embedding 127.0.0.1", "embedded"),
    row("http://[::ffff:7f00:1]/", "IPv4-mapped IPv6 address embedding 127.0.0.1", "embedded"),
    row("http://[::ffff:169.254.169.254]/", "169.254.169.254, a cloud metadata", "embedded"),
    row("http://[::127.0.0.1]/", "IPv4-compatible IPv6 address embedding 127.0.0.1", "embedded"),
    row("http://[2002:7f00:1::]/", "6to4 IPv6 address embedding 127.0.0.1", "embedded"),
    row("http://[2002:a9fe:a9fe::]/", "6to4 IPv6 address embedding 169.254.169.254", "embedded"),
    row("http://[64:ff9b::7f00:1]/", "NAT64 IPv6 address embedding 127.0.0.1", "embedded"),
    row("http://[64:ff9b::a00:1]/", "NAT64 IPv6 address embedding 10.0.0.1", "embedded"),
    row("http://[64:ff9b:1::a00:1]/", "local-use NAT64 address", "embedded"),
    row(
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "Teredo IPv6 address embedding 127.0.0.1",
        "embedded",
    ),
    # numeric tricks
    row(
        "http://2130706433/", "'2130706433' is a non-standard numeric form of 127.0.0.1", "numeric"
    ),
    row("http://0177.0.0.1/", "non-standard numeric form of 127.0.0.1", "numeric"),
    row("http://0x7f.1/", "non-standard numeric form of 127.0.0.1", "numeric"),
    row("http://0x7f000001/", "non-standard numeric form of 127.0.0.1", "numeric"),
    row("http://0x7F.0.0.1/", "non-standard numeric form of 127.0.0.1", "numeric"),
    row("http://127.1/", "non-standard numeric form of 127.0.0.1", "numeric"),
    row("http://017700000001/", "non-standard numeric form of 127.0.0.1", "numeric"),
    row("http://127.000.000.001/", "non-standard numeric form of 127.0.0.1", "numeric"),
    row("http://0/", "non-standard numeric form of 0.0.0.0", "numeric"),
    row("http://3232235777/", "non-standard numeric form of 192.168.1.1", "numeric"),
    row("http://0xa9fea9fe/", "of 169.254.169.254, a cloud metadata address", "numeric"),
    row("http://1.2.3.4.5/", "neither a host name nor an IPv4 address", "numeric"),
    row("http://08.0.0.1/", "neither a host name nor an IPv4 address", "numeric"),
    row("http://127.0.0.1./", "127.0.0.1 is a loopback address", "trailing-dot"),
    row("http://localhost./", "localhost resolves to", "trailing-dot"),
    # user info and parser confusion
    row("http://example.com@127.0.0.1/", "user name or password", "userinfo"),
    row("http://user:pass@example.com/", "user name or password", "userinfo"),
    row("http://127.0.0.1%2f@example.com/", "user name or password", "userinfo"),
    row("http://127.0.0.1\\@example.com/", "backslashes", "confusion"),
    row("http://127.0.0.1:80#@example.com/", "127.0.0.1 is a loopback address", "confusion"),
    row("http://127.0.0.1/\r\nHost: example.com", "control characters", "confusion"),
    row("http://%31%32%37.0.0.1/", "percent-encoded hosts", "confusion"),
    row("http:/127.0.0.1/", "the URL has no host", "confusion"),
    row("http://[::1]:99999/", "the URL is malformed", "confusion"),
    row("http://[127.0.0.1]/", "the URL is malformed", "confusion"),
    row("http://a..b/", "is not a valid host name", "confusion"),
    # unicode / IDN
    row("http://①②⑦.0.0.1/", "127.0.0.1 is a loopback address", "unicode"),
    row("http://127。0。0。1/", "127.0.0.1 is a loopback address", "unicode"),
    row(
        "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "127.0.0.1 is a loopback", "unicode"
    ),  # fullwidth
    row("http://0x7f。1/", "non-standard numeric form of 127.0.0.1", "unicode"),
    row("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "localhost resolves to", "unicode"),
    # names resolving to internal addresses
    row("http://localhost/", "localhost resolves to", "dns"),
    row("http://LOCALHOST:8080/", "localhost resolves to", "dns"),
    row("http://evil.test/", "evil.test resolves to 127.0.0.1, a loopback address", "dns"),
    row("http://metadata.test/", "resolves to 169.254.169.254, a cloud metadata", "dns"),
    row("http://mixed.test/", "mixed.test resolves to 10.0.0.5, a private address", "dns"),
    row("http://v6loop.test/", "v6loop.test resolves to ::1, a loopback address", "dns"),
    row("http://mapped.test/", "embedding 10.0.0.1, a private address", "dns"),
    row("http://nat64.test/", "embedding 169.254.169.254, a cloud metadata", "dns"),
    row("http://cgnat.test/", "resolves to 100.64.1.2, a carrier-grade NAT", "dns"),
    row("http://linklocal6.test/", "a link-local address", "dns"),
    row("http://unknown.test/", "could not be resolved", "dns"),
    # ports
    row("http://93.184.216.34:8080/", "port 8080 is not allowed", "port"),
    row("https://public.test:22/", "port 22 is not allowed", "port"),
    row("http://public.test:6379/", "port 6379 is not allowed", "port"),
]


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40


@pytest.fixture
async def fetch_tool() -> AsyncIterator[HttpFetchTool]:
    # Tiny timeouts: if a URL slipped through, the test fails fast instead of hanging.
    yield HttpFetchTool(resolver=table_resolver, connect_timeout=0.5, read_timeout=0.5)


@pytest.mark.parametrize(("url", "reason"), CORPUS)
async def test_every_corpus_url_is_refused(
    fetch_tool: HttpFetchTool, url: str, reason: str
) -> None:
    with pytest.raises(URLRefused) as caught:
        await fetch_tool.call({"url": url}, CONTEXT)
    assert reason in caught.value.reason


async def test_a_refusal_reaches_the_model_as_an_error_result() -> None:
    registry = ToolRegistry([HttpFetchTool(resolver=table_resolver)])
    result = await registry.call("http_fetch", {"url": "http://evil.test/"}, CONTEXT)
    assert result.is_error
    assert result.content == (
        "Refused to fetch 'http://evil.test/': evil.test resolves to 127.0.0.1, a loopback address."
    )


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",  # NAT64 of a public address: what DNS64 networks hand out
        "2002:808:808::1",  # 6to4 of a public address
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ip_address(address)) is None


async def test_public_names_are_vetted_and_pinned_to_every_address() -> None:
    target = await AddressGuard(resolver=table_resolver).vet("https://Public.TEST./a b?q=ü#x")
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert target.url.url == "https://public.test/a%20b?q=%C3%BC"


async def test_the_resolver_sees_the_normalized_host_and_port() -> None:
    calls: list[tuple[str, int]] = []

    async def recording(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.216.34"]

    target = await AddressGuard(resolver=recording).vet("http://BÜCHER.example:443/")
    assert calls == [("xn--bcher-kva.example", 443)]
    assert target.url.authority == "xn--bcher-kva.example:443"


async def test_the_allow_list_opens_exact_hosts_and_ports() -> None:
    guard = AddressGuard(
        allow_hosts=["Intranet.test.", "127.0.0.1:8080", "[::1]:9000"], resolver=table_resolver
    )
    assert (await guard.vet("http://intranet.test:8443/x")).addresses == ("10.1.2.3",)
    assert (await guard.vet("http://127.0.0.1:8080/")).addresses == ("127.0.0.1",)
    assert (await guard.vet("http://[::1]:9000/")).addresses == ("::1",)
    with pytest.raises(URLRefused, match=re.escape("127.0.0.1 is a loopback address")):
        await guard.vet("http://127.0.0.1:8081/")
    with pytest.raises(URLRefused, match=re.escape("evil.test resolves to 127.0.0.1")):
        await guard.vet("http://evil.test/")
    with pytest.raises(URLRefused, match="user name or password"):
        await guard.vet("http://intranet.test@127.0.0.1:8080/")


@pytest.mark.parametrize("entry", ["", "http://x/", "user@host", "0x7f.1", "host/path"])
def test_bad_allow_list_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError):
        AddressGuard(allow_hosts=[entry])


async def test_resolver_answers_are_checked() -> None:
    async def empty(host: str, port: int) -> list[str]:
        return []

    async def garbage(host: str, port: int) -> list[str]:
        return ["not-an-ip"]

    with pytest.raises(URLRefused, match="resolves to no address"):
        await AddressGuard(resolver=empty).vet("http://x.test/")
    with pytest.raises(URLRefused, match="resolved to an invalid address"):
        await AddressGuard(resolver=garbage).vet("http://x.test/")


async def test_the_system_resolver_resolves_localhost() -> None:
    assert "127.0.0.1" in await system_resolver("localhost", 80)


async def test_the_pinned_backend_dials_only_vetted_addresses() -> None:
    accepted: list[str] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername")[0])
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = PinnedBackend()
    # 127.0.0.2 has nothing listening: the backend moves on to the next vetted address.
    backend.pin(
        Target(ParsedURL("http", "pinned.test", port, "/", None), ("127.0.0.2", "127.0.0.1"))
    )
    try:
        stream = await backend.connect_tcp("pinned.test", port, timeout=2)
        await stream.aclose()
        with pytest.raises(httpcore2.ConnectError, match="was not vetted"):
            await backend.connect_tcp("other.test", port, timeout=2)
        with pytest.raises(httpcore2.ConnectError, match="Unix sockets"):
            await backend.connect_unix_socket("/run/docker.sock")
    finally:
        server.close()
        await server.wait_closed()
    assert accepted == ["127.0.0.1"]
