"""The ``http_fetch`` tool: GET a public URL and return its readable text.

Every hop (the first request and each redirect, at most ``max_redirects``) is vetted by
``ssrf.AddressGuard`` — parse, resolve, refuse non-public addresses — and the connection is
pinned to the vetted addresses by ``ssrf.PinnedBackend`` (see that module for how). Requests
go through httpcore directly, with one connection pool per call, so nothing is shared
between calls and no proxy from the environment is ever used.

Limits: ``max_bytes`` of body are read (streamed, then the connection is dropped), a connect
and a read timeout, ``Accept-Encoding: identity`` (a compressed body sent anyway is
inflated to at most ``max_bytes``). HTML is turned into text with the standard library's
``html.parser`` (scripts and styles dropped, link text kept, the title reported); JSON and
other text come back as they are; other content types are refused unread.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import re
import ssl
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpcore2

from agentplatform.tools.base import ToolContext, ToolError, ToolResult
from agentplatform.tools.ssrf import MAX_URL_CHARS, AddressGuard, PinnedBackend, Resolver, Target

DEFAULT_USER_AGENT = "agentplatform-http-fetch/0.1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "text/html,application/xhtml+xml,application/json;q=0.9,text/plain;q=0.8,*/*;q=0.5"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = re.compile(
    r"text/.*|application/(json|xml|javascript|ecmascript|x-ndjson|yaml|x-yaml|csv"
    r"|[\w.-]+\+(json|xml))"
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})
_BLOCK_TAGS = frozenset(  # a line break before and after
    {
        *("address", "article", "aside", "blockquote", "div", "dl", "figcaption", "figure"),
        *("footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav"),
        *("ol", "p", "pre", "section", "table", "ul"),
    }
)
_LINE_TAGS = frozenset({"br", "dd", "dt", "li", "tr"})  # a line break before


class _TextExtractor(HTMLParser):
    """Collects the visible text and the title of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self._parts: list[str] = []
        self._skipping: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping.append(tag)
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCK_TAGS or tag in _LINE_TAGS:
            self._parts.append("\n")
        elif tag in ("td", "th"):
            self._parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCK_TAGS:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._in_title:
            self.title += data
        else:
            self._parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._parts).splitlines())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> tuple[str, str]:
    """``(title, text)`` of an HTML document."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return " ".join(parser.title.split()), parser.text()


@dataclass(frozen=True, slots=True)
class _Body:
    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes
    truncated: bool


def _charset(body: _Body, is_html: bool) -> str:
    match = re.search(r"charset\s*=\s*[\"']?([\w-]+)", body.headers.get("content-type", ""))
    if match is None and is_html:
        meta = _META_CHARSET.search(body.content[:2048])
        name = meta.group(1).decode("ascii") if meta else None
    else:
        name = match.group(1) if match else None
    try:
        return codecs.lookup(name).name if name else "utf-8"
    except LookupError:
        return "utf-8"


def _render(body: _Body) -> tuple[str, str, bool]:
    """``(title, text, is_html)``; runs in a worker thread, as parsing a page takes a while."""
    media_type = body.headers.get("content-type", "").split(";")[0].strip().lower()
    is_html = media_type in _HTML_TYPES or (
        not media_type and body.content[:256].lstrip().lower().startswith((b"<!doctype", b"<html"))
    )
    text = body.content.decode(_charset(body, is_html), errors="replace")
    if is_html:
        title, text = html_to_text(text)
        return title, text, True
    return "", text, False


def _inflate(body: _Body, limit: int) -> _Body:
    encoding = body.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ToolError(f"{body.url} sent an unsupported content encoding ({encoding}).")
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: zlib or gzip, detected from the header
    try:
        content = inflater.decompress(body.content, limit)
    except zlib.error:
        raise ToolError(f"{body.url} sent a corrupt {encoding} body.") from None
    truncated = body.truncated or bool(inflater.unconsumed_tail)
    return _Body(body.url, body.status, body.headers, content, truncated)


class HttpFetchTool:
    """Fetches a public web page (or an operator-allowed internal one) as text."""

    name = "http_fetch"
    description = (
        "Fetch a URL with HTTP GET and return its readable text: HTML pages are converted to "
        "plain text (with the title), JSON and plain text are returned as they are. Only "
        "public http:// and https:// addresses can be fetched."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "description": "An absolute http:// or https:// URL.",
                "maxLength": MAX_URL_CHARS,
            }
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    def __init__(
        self,
        *,
        allow_hosts: Sequence[str] = (),
        resolver: Resolver | None = None,
        max_bytes: int = 1_000_000,
        connect_timeout: float = 10.0,
        read_timeout: float = 15.0,
        timeout: float = 30.0,
        max_redirects: int = 5,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        if max_bytes <= 0 or connect_timeout <= 0 or read_timeout <= 0 or timeout <= 0:
            raise ValueError("max_bytes and the timeouts must be positive")
        if max_redirects < 0:
            raise ValueError("max_redirects cannot be negative")
        self._guard = AddressGuard(allow_hosts=allow_hosts, resolver=resolver)
        self._max_bytes = max_bytes
        self._timeouts = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": connect_timeout,
        }
        self.timeout = timeout
        self._max_redirects = max_redirects
        self._ssl_context = ssl_context
        self._user_agent = user_agent

    def unavailable_reason(self) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        url = arguments.get("url")
        if not isinstance(url, str):
            raise ToolError("The argument 'url' must be a string.")
        body = await self._fetch(url.strip())
        title, text, is_html = await asyncio.to_thread(_render, body)
        lines = [f"URL: {body.url}", f"Status: {body.status}"]
        if is_html and title:
            lines.append(f"Title: {title}")
        if body.truncated:
            lines.append(f"[Only the first {self._max_bytes:,} bytes of the body were read.]")
        if body.status >= 400:
            raise ToolError(f"{body.url} answered HTTP {body.status}: {text[:500]}".strip())
        return ToolResult("\n".join(lines) + "\n\n" + text)

    async def _fetch(self, url: str) -> _Body:
        """GET ``url``, following vetted redirects; network failures become ``ToolError``."""
        target = await self._guard.vet(url)
        if self._ssl_context is None:  # loading the CA bundle takes a moment: once per tool
            self._ssl_context = httpcore2.default_ssl_context()
        backend = PinnedBackend()
        try:
            async with httpcore2.AsyncConnectionPool(
                ssl_context=self._ssl_context, network_backend=backend, retries=0
            ) as pool:
                return await self._follow(pool, backend, target)
        except httpcore2.TimeoutException:
            raise ToolError(f"Fetching {url} timed out.") from None
        except (
            httpcore2.NetworkError,
            httpcore2.ProtocolError,
            httpcore2.UnsupportedProtocol,
        ) as exc:
            raise ToolError(f"Fetching {url} failed: {exc or type(exc).__name__}.") from None

    async def _follow(
        self, pool: httpcore2.AsyncConnectionPool, backend: PinnedBackend, target: Target
    ) -> _Body:
        redirects = 0
        while True:
            backend.pin(target)
            body, location = await self._get(pool, target)
            if body is not None:
                return _inflate(body, self._max_bytes)
            redirects += 1
            if redirects > self._max_redirects:
                raise ToolError(f"Too many redirects (more than {self._max_redirects}).")
            target = await self._guard.vet(urljoin(target.url.url, location))

    async def _get(
        self, pool: httpcore2.AsyncConnectionPool, target: Target
    ) -> tuple[_Body | None, str]:
        """One GET: the body, or ``(None, location)`` for a redirect (its body left unread)."""
        parsed = target.url
        request_url = httpcore2.URL(
            scheme=parsed.scheme.encode(),
            host=parsed.host.encode(),
            port=parsed.port,
            target=parsed.target.encode(),
        )
        headers = [
            (b"Host", parsed.authority.encode()),
            (b"User-Agent", self._user_agent.encode()),
            (b"Accept", _ACCEPT.encode()),
            (b"Accept-Encoding", b"identity"),
        ]
        extensions = {"timeout": self._timeouts}
        async with pool.stream("GET", request_url, headers=headers, extensions=extensions) as resp:
            found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in resp.headers}
            if resp.status in REDIRECT_STATUSES and found.get("location", "").strip():
                return None, found["location"].strip()
            media_type = found.get("content-type", "").split(";")[0].strip().lower()
            if (
                media_type
                and media_type not in _HTML_TYPES
                and not _TEXT_TYPES.fullmatch(media_type)
            ):
                raise ToolError(f"{parsed.url} is {media_type}, not text; it was not downloaded.")
            content, truncated = await self._read(resp)
        return _Body(parsed.url, resp.status, found, content, truncated), ""

    async def _read(self, response: httpcore2.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async with contextlib.aclosing(response.aiter_stream()) as stream:
            async for chunk in stream:
                room = self._max_bytes - size
                if len(chunk) > room:
                    chunks.append(chunk[:room])
                    return b"".join(chunks), True
                chunks.append(chunk)
                size += len(chunk)
        return b"".join(chunks), False
