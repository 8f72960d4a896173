"""A real MCP server, written with the ``mcp`` SDK, for the MCP tool-source tests.

Run it over stdio (what an operator's ``command`` entry does)::

    python -m tests.fakes.mcp_server

or over streamable HTTP on loopback, on a port or on an inherited listening socket::

    python -m tests.fakes.mcp_server --http --port 9000
    python -m tests.fakes.mcp_server --http --fd 5

``HttpMcpServer`` starts the HTTP flavour as a subprocess on a socket the test process bound
first, so clients may connect at once (connections queue until the child accepts them) and
no test ever waits for the server with a sleep. A subprocess rather than a thread, because
the SDK's server configures process-wide logging when it is built.

Tools: ``echo``, ``add``, ``slow`` (sleeps), ``fail`` (an ``isError`` result), ``boom``
(raises), ``refuse`` (a protocol-level error), ``gather`` (returns once ``count`` calls with
the same key are in flight: proves calls run concurrently without timing), ``media`` (image,
audio, embedded and linked resources), ``env_var``/``cwd`` (what the process was given) and
``pid``, ``header`` (an HTTP header of the call), ``dotted.name`` (a name model vendors
refuse) and ``crash`` (the process exits at once, mid-call).
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import anyio
import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def build_server() -> MCPServer:
    """The fake with all its tools; its state lives in closures, none at import time."""
    server: MCPServer = MCPServer("fake-mcp", log_level="CRITICAL")
    _add_plain_tools(server)
    _add_special_tools(server)
    return server


def _add_plain_tools(server: MCPServer) -> None:
    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await anyio.sleep(seconds)
        return f"slept {seconds:g} s"

    @server.tool()
    def fail() -> CallToolResult:
        """Report a tool-level failure."""
        return CallToolResult(content=[TextContent(text="it failed on purpose")], is_error=True)

    @server.tool()
    def boom() -> str:
        """Raise an unexpected exception."""
        raise RuntimeError("kaboom")

    @server.tool()
    def refuse() -> str:
        """Answer with a JSON-RPC error instead of a result."""
        raise MCPError(code=-32001, message="refused by the fake")


def _add_special_tools(server: MCPServer) -> None:
    groups: dict[str, tuple[list[int], anyio.Event]] = {}

    @server.tool()
    async def gather(key: str, count: int) -> str:
        """Return once ``count`` calls with this key are waiting together."""
        arrived, everyone = groups.setdefault(key, ([0], anyio.Event()))
        arrived[0] += 1
        if arrived[0] >= count:
            everyone.set()
        await everyone.wait()
        return f"{key}: {count} together"

    @server.tool()
    def media() -> CallToolResult:
        """Every kind of content block."""
        data = base64.b64encode(PNG_BYTES).decode()
        return CallToolResult(
            content=[
                TextContent(text="here you go"),
                ImageContent(data=data, mime_type="image/png"),
                AudioContent(data=data, mime_type="audio/wav"),
                EmbeddedResource(
                    resource=TextResourceContents(uri="file:///notes.txt", text="embedded text")
                ),
                EmbeddedResource(
                    resource=BlobResourceContents(
                        uri="file:///blob.bin", blob=data, mime_type="application/octet-stream"
                    )
                ),
                ResourceLink(uri="file:///linked.txt", name="linked"),
            ]
        )

    @server.tool()
    def env_var(name: str) -> str:
        """The value of an environment variable, or ``<unset>``."""
        return os.environ.get(name, "<unset>")

    @server.tool()
    def cwd() -> str:
        """The working directory."""
        return str(Path.cwd())

    @server.tool()
    def pid() -> int:
        """This server's process id."""
        return os.getpid()

    @server.tool()
    def header(name: str, ctx: Context) -> str:
        """An HTTP request header of this call, or ``<none>`` (always so over stdio)."""
        return (ctx.headers or {}).get(name.lower(), "<none>")

    @server.tool(name="dotted.name")
    def dotted() -> str:
        """A tool whose name model vendors would refuse."""
        return "unreachable"

    @server.tool()
    def crash() -> str:
        """Exit the whole process without answering."""
        os._exit(17)


def serve_http(server: MCPServer, sock: socket.socket) -> None:
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    anyio.run(uvicorn.Server(config).serve, [sock])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.mcp_server")
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP on loopback")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fd", type=int, help="an inherited, listening socket to serve on")
    args = parser.parse_args(argv)
    server = build_server()
    if not args.http:
        server.run("stdio")
        return
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server(("127.0.0.1", args.port))
    serve_http(server, sock)


class HttpMcpServer:
    """The fake served over streamable HTTP by a child process on a free loopback port."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> Self:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            self.port = sock.getsockname()[1]
            fd = sock.fileno()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.mcp_server", "--http", "--fd", str(fd)],
                cwd=REPO_ROOT,
                pass_fds=[fd],
            )
        # The child holds the only copy of the socket now: once it exits, connections fail.
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
