"""``http_fetch`` against real HTTP(S) servers on 127.0.0.1: text extraction, pinning,
redirect hops re-vetted, size and time limits.

The servers are opened to the tool through its operator allow-list (``127.0.0.1:<port>``, or
a fake name that the ``resolver`` seam maps to 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from agentplatform.tools.base import ToolContext, ToolError, ToolRegistry
from agentplatform.tools.http_fetch import HttpFetchTool, html_to_text
from agentplatform.tools.ssrf import URLRefused

CONTEXT = ToolContext(user_id="u", conversation_id="c", run_id="r")


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]


Handler = Callable[["LocalServer", Seen, asyncio.StreamWriter], Awaitable[None]]


class LocalServer:
    """A tiny HTTP/1.1 server on 127.0.0.1; ``handler`` answers, every request is recorded."""

    def __init__(
        self, handler: Handler, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.handler = handler
        self.host = host
        self.requests: list[Seen] = []
        self.release = asyncio.Event()  # handlers that hang wait for this
        self.disconnected = asyncio.Event()  # the client hung up mid-answer
        self.bytes_sent = 0
        self._ssl = ssl_context
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> LocalServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self._ssl)
        self.port: int = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release.set()
        self._server.close()
        await self._server.wait_closed()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.strip().split("\r\n")
            method, target, _ = request_line.split(" ")
            headers = dict(line.split(": ", 1) for line in lines)
            seen = Seen(method, target, {k.lower(): v for k, v in headers.items()})
            self.requests.append(seen)
            await self.handler(self, seen, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            self.disconnected.set()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


async def respond(
    writer: asyncio.StreamWriter,
    body: bytes = b"",
    *,
    status: int = 200,
    content_type: str | None = "text/plain; charset=utf-8",
    headers: dict[str, str] | None = None,
) -> None:
    fields = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    if content_type:
        fields["Content-Type"] = content_type
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    writer.write(head.encode("latin-1") + b"\r\n" + body)
    await writer.drain()


PAGE = b"""<!doctype html><html><head><title> Test
 page </title><style>body { color: red }</style><script>alert("secret")</script></head>
<body><h1>Hello &amp; welcome</h1><p>First <a href="/next">linked text</a> here.</p>
<noscript>enable js</noscript><ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td>
</tr></table></body></html>"""


async def page(server: LocalServer, seen: Seen, writer: asyncio.StreamWriter) -> None:
    if seen.target == "/missing":
        await respond(writer, b'{"error": "no such thing"}', status=404, content_type=None)
    elif seen.target == "/data.json":
        await respond(writer, b'{"answer": 42}', content_type="application/json")
    elif seen.target == "/latin1":
        await respond(writer, "café".encode("latin-1"), content_type="text/plain; charset=latin-1")
    elif seen.target == "/image":
        await respond(writer, b"\x89PNG" + b"\0" * 100, content_type="image/png")
    elif seen.target == "/gzip":
        body = gzip.compress(b"compressed hello")
        await respond(writer, body, headers={"Content-Encoding": "gzip"})
    elif seen.target == "/bomb":
        body = gzip.compress(b"\0" * 20_000_000)  # ~20 kB on the wire, 20 MB inflated
        await respond(writer, body, headers={"Content-Encoding": "gzip"})
    else:
        await respond(writer, PAGE, content_type="text/html; charset=utf-8")


def redirect_to(location: str) -> Handler:
    async def handler(server: LocalServer, seen: Seen, writer: asyncio.StreamWriter) -> None:
        if seen.target == "/final":
            await respond(writer, PAGE, content_type="text/html")
        else:
            await respond(writer, status=302, headers={"Location": location})

    return handler


@pytest.fixture
async def site() -> AsyncIterator[LocalServer]:
    async with LocalServer(page) as server:
        yield server


def allowing(server: LocalServer, **options: Any) -> HttpFetchTool:
    """A fetcher whose allow-list opens this server (and only this port of 127.0.0.1)."""
    return HttpFetchTool(
        allow_hosts=[f"127.0.0.1:{server.port}"], resolver=evil_resolver, **options
    )


async def evil_resolver(host: str, port: int) -> list[str]:
    return {"evil.test": ["127.0.0.1"], "site.test": ["127.0.0.1"]}[host]


async def fetch(tool: HttpFetchTool, url: str) -> str:
    return (await tool.call({"url": url}, CONTEXT)).content


async def test_an_allowed_html_page_comes_back_as_text(site: LocalServer) -> None:
    registry = ToolRegistry([allowing(site)])
    result = await registry.call("http_fetch", {"url": f"http://127.0.0.1:{site.port}/"}, CONTEXT)
    assert not result.is_error
    head, text = result.content.split("\n\n", 1)
    assert head == f"URL: http://127.0.0.1:{site.port}/\nStatus: 200\nTitle: Test page"
    assert text == "Hello & welcome\n\nFirst linked text here.\n\none\ntwo\n\na b"
    [seen] = site.requests
    assert seen.method == "GET"
    assert seen.headers["host"] == f"127.0.0.1:{site.port}"
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["user-agent"].startswith("agentplatform")


async def test_json_and_text_come_back_as_they_are(site: LocalServer) -> None:
    tool = allowing(site)
    assert (await fetch(tool, f"http://127.0.0.1:{site.port}/data.json")).endswith(
        '\n\n{"answer": 42}'
    )
    assert (await fetch(tool, f"http://127.0.0.1:{site.port}/latin1")).endswith("\n\ncafé")


async def test_binary_content_is_refused_unread(site: LocalServer) -> None:
    with pytest.raises(ToolError, match="is image/png, not text"):
        await fetch(allowing(site), f"http://127.0.0.1:{site.port}/image")


async def test_an_http_error_is_reported_with_its_body(site: LocalServer) -> None:
    with pytest.raises(ToolError, match=r"answered HTTP 404: \{\"error\": \"no such thing\"\}"):
        await fetch(allowing(site), f"http://127.0.0.1:{site.port}/missing")


async def test_a_compressed_body_is_inflated_within_the_cap(site: LocalServer) -> None:
    tool = allowing(site, max_bytes=65_536)
    assert (await fetch(tool, f"http://127.0.0.1:{site.port}/gzip")).endswith("compressed hello")
    bomb = await fetch(tool, f"http://127.0.0.1:{site.port}/bomb")
    assert "[Only the first 65,536 bytes of the body were read.]" in bomb
    assert len(bomb) < 70_000


async def test_the_connection_is_pinned_to_the_vetted_address(site: LocalServer) -> None:
    lookups: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["127.0.0.1"]  # "pinned.test" exists nowhere else: only the pin reaches it

    tool = HttpFetchTool(allow_hosts=["pinned.test"], resolver=resolver)
    result = await fetch(tool, f"http://pinned.test:{site.port}/data.json")
    assert result.startswith(f"URL: http://pinned.test:{site.port}/data.json\nStatus: 200")
    assert lookups == [("pinned.test", site.port)]  # resolved once, by the guard
    assert site.requests[0].headers["host"] == f"pinned.test:{site.port}"


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_allowed_ipv6_literal_is_fetched() -> None:
    async with LocalServer(page, host="::1") as server:
        tool = HttpFetchTool(allow_hosts=[f"[::1]:{server.port}"])
        result = await fetch(tool, f"http://[::1]:{server.port}/data.json")
    assert result.startswith(f"URL: http://[::1]:{server.port}/data.json\nStatus: 200")
    assert server.requests[0].headers["host"] == f"[::1]:{server.port}"


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=pinned.test"),
            *("-addext", "subjectAltName=DNS:pinned.test"),
        ],
        check=True,
        capture_output=True,
    )
    yield cert, key


async def test_https_checks_the_certificate_and_sni_for_the_name(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    server_names: list[str | None] = []
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server_side.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    client_side = ssl.create_default_context(cafile=str(cert))

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with LocalServer(page, ssl_context=server_side) as server:
        tool = HttpFetchTool(
            allow_hosts=["pinned.test", "other.test"], resolver=resolver, ssl_context=client_side
        )
        result = await fetch(tool, f"https://pinned.test:{server.port}/data.json")
        assert result.endswith('{"answer": 42}')
        assert server_names == ["pinned.test"]
        assert server.requests[0].headers["host"] == f"pinned.test:{server.port}"

        # Same address, another name: the certificate does not match, so no request is made.
        with pytest.raises(ToolError, match="failed"):
            await fetch(tool, f"https://other.test:{server.port}/data.json")
        assert len(server.requests) == 1


async def test_a_relative_redirect_on_an_allowed_host_is_followed() -> None:
    async with LocalServer(redirect_to("/final")) as server:
        result = await fetch(allowing(server), f"http://127.0.0.1:{server.port}/start")
    assert result.startswith(f"URL: http://127.0.0.1:{server.port}/final\n")
    assert "Hello & welcome" in result
    assert [seen.target for seen in server.requests] == ["/start", "/final"]


REDIRECT_CORPUS = [
    ("http://127.0.0.1:{other}/", "127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://[::ffff:127.0.0.1]:{other}/", "IPv4-mapped IPv6 address embedding 127.0.0.1"),
    ("http://2130706433:{other}/", "non-standard numeric form of 127.0.0.1"),
    ("http://evil.test:{other}/", "evil.test resolves to 127.0.0.1"),
    ("http://10.0.0.1/admin", "10.0.0.1 is a private address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address"),
    ("file:///etc/passwd", "only http:// and https://"),
    ("http://site.test@127.0.0.1:{other}/", "user name or password"),
]


@pytest.mark.parametrize(("location", "reason"), REDIRECT_CORPUS)
@pytest.mark.parametrize("allow", ["address", "name"])
async def test_a_redirect_to_an_internal_address_is_refused_at_the_hop(
    location: str, reason: str, allow: str
) -> None:
    async with LocalServer(page) as other:
        to = location.format(other=other.port)
        async with LocalServer(redirect_to(to)) as server:
            if allow == "address":
                tool = allowing(server)
                url = f"http://127.0.0.1:{server.port}/start"
            else:
                tool = HttpFetchTool(allow_hosts=["site.test"], resolver=evil_resolver)
                url = f"http://site.test:{server.port}/start"
            with pytest.raises(URLRefused) as caught:
                await fetch(tool, url)
    assert reason in caught.value.reason
    assert len(server.requests) == 1
    assert other.requests == []  # the internal server was never reached


async def test_redirects_are_counted() -> None:
    async def loop(server: LocalServer, seen: Seen, writer: asyncio.StreamWriter) -> None:
        hop = int(seen.target.strip("/") or 0)
        await respond(writer, status=301, headers={"Location": f"/{hop + 1}"})

    async with LocalServer(loop) as server:
        with pytest.raises(ToolError, match=r"Too many redirects \(more than 5\)"):
            await fetch(allowing(server), f"http://127.0.0.1:{server.port}/")
        assert [seen.target for seen in server.requests] == ["/", "/1", "/2", "/3", "/4", "/5"]

    async with LocalServer(redirect_to("/final")) as server:
        tool = HttpFetchTool(allow_hosts=[f"127.0.0.1:{server.port}"], max_redirects=0)
        with pytest.raises(ToolError, match="more than 0"):
            await fetch(tool, f"http://127.0.0.1:{server.port}/")


async def test_a_large_body_is_cut_at_the_cap_without_reading_the_rest() -> None:
    total = 5_000_000

    async def stream(server: LocalServer, seen: Seen, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16_384)
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {total}\r\n\r\n"
        writer.write(head.encode())
        chunk = b"x" * 16_384
        while server.bytes_sent < total:
            writer.write(chunk)
            await writer.drain()
            server.bytes_sent += len(chunk)

    async with LocalServer(stream) as server:
        result = await fetch(allowing(server, max_bytes=65_536), f"http://127.0.0.1:{server.port}/")
        async with asyncio.timeout(10):
            await server.disconnected.wait()
    assert "[Only the first 65,536 bytes of the body were read.]" in result
    assert result.endswith("\n\n" + "x" * 65_536)
    assert server.bytes_sent < total, server.bytes_sent


async def test_a_server_that_never_answers_times_out() -> None:
    async def hang(server: LocalServer, seen: Seen, writer: asyncio.StreamWriter) -> None:
        await server.release.wait()

    async with LocalServer(hang) as server:
        tool = allowing(server, read_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(ToolError, match="timed out"):
            await fetch(tool, f"http://127.0.0.1:{server.port}/")
        assert time.monotonic() - started < 5

        registry = ToolRegistry([allowing(server, timeout=0.3)])  # the registry's own deadline
        result = await registry.call(
            "http_fetch", {"url": f"http://127.0.0.1:{server.port}/"}, CONTEXT
        )
        assert result.is_error and "timed out" in result.content


async def test_a_closed_port_is_a_readable_failure() -> None:
    async with LocalServer(page) as server:
        port = server.port
    with pytest.raises(ToolError, match="failed"):
        await fetch(HttpFetchTool(allow_hosts=[f"127.0.0.1:{port}"]), f"http://127.0.0.1:{port}/")


def test_html_to_text_keeps_link_text_and_drops_scripts() -> None:
    title, text = html_to_text(
        "<title>T</title><p>a <a href='x'>b</a> c</p><script>var s = '<p>no</p>';</script>"
        "<svg><text>no</text></svg><template><p>no</p></template>&lt;ok&gt;"
    )
    assert (title, text) == ("T", "a b c\n\n<ok>")


@pytest.mark.parametrize(
    "options",
    [{"max_bytes": 0}, {"read_timeout": 0}, {"connect_timeout": -1}, {"max_redirects": -1}],
)
def test_nonsense_limits_are_rejected(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HttpFetchTool(**options)  # type: ignore[arg-type]
