"""MCP servers as tool sources: the operator's servers, their tools in our ``Tool`` shape.

``McpServers(config)`` (config from ``mcp_config.load_mcp_config``) connects to every
server on ``start()`` — stdio servers through the SDK's stdio client, URLs through its
streamable-HTTP client — lists their tools and offers each as an ``McpTool`` named
``<server>.<tool>`` (``tools()``, for ``ToolRegistry.register``). Users cannot add servers:
only the operator's file declares them (see ``mcp_config``).

Failures never take the platform down:

- a server that does not start is logged; its allow-listed tools are registered but report
  ``unavailable_reason()`` (without an allow-list its tools are unknown, so none appear);
  ``failures()`` lists such servers for health checks; it stays so until the next start;
- a server that dies later fails the calls in flight with an error result, and the next
  call starts it again;
- an ``isError`` result, a JSON-RPC error or a lost connection reaches the model as an error
  result, never as an exception.

Each connection is owned by one task, which enters the SDK's context managers, waits for a
stop signal and exits them: anyio requires a cancel scope to be left by the task that
entered it. Calls run in the callers' tasks — the SDK's session multiplexes concurrent
requests — and a caller cancelled by its timeout makes the SDK tell the server to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import anyio
import httpx2
import jsonschema
import mcp_types as mt
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from agentplatform.tools.base import Tool, ToolContext, ToolError, ToolResult
from agentplatform.tools.mcp_config import TOOL_NAME, McpConfig, McpServerConfig

log = logging.getLogger("agentplatform.tools.mcp")

CLIENT_INFO = mt.Implementation(name="agentplatform", version="0.1.0")
CLOSE_GRACE_SECONDS = 10.0  # the SDK's stdio shutdown needs up to ~6 s for a stubborn server
MAX_TOOL_PAGES = 50


@dataclass(frozen=True, slots=True, eq=False)
class McpTool:
    """One MCP tool, offered as ``<server>.<tool>``; calls go to its server's session."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    timeout: float
    remote_name: str
    server: _Server

    def unavailable_reason(self) -> str | None:
        return self.server.unavailable_reason()

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        return await self.server.call(self.remote_name, arguments)


class McpServers:
    """Every configured MCP server; ``start()`` once, then ``tools()``; ``aclose()`` at exit."""

    def __init__(self, config: McpConfig, *, errlog: TextIO | None = None) -> None:
        # errlog receives stdio servers' stderr; the default is this process's stderr.
        log_to = errlog if errlog is not None else sys.stderr
        self._servers = [_Server(name, cfg, log_to) for name, cfg in config.servers.items()]

    async def start(self) -> None:
        """Connect to every server at once; a server that fails is logged, not raised."""
        async with asyncio.TaskGroup() as group:
            for server in self._servers:
                group.create_task(server.start())

    def tools(self) -> list[Tool]:
        return [tool for server in self._servers for tool in server.tools]

    def failures(self) -> dict[str, str]:
        """Servers that did not start, with the reason."""
        return {s.name: s.failure for s in self._servers if s.failure is not None}

    async def aclose(self) -> None:
        """Stop every connection and wait for it: no server process outlives this.

        Call it even when ``start()`` was interrupted: handshakes in progress are abandoned.
        """
        async with asyncio.TaskGroup() as group:
            for server in self._servers:
                group.create_task(server.aclose())

    async def __aenter__(self) -> McpServers:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Server:
    """One configured server: its tools, its current connection, reconnects."""

    def __init__(self, name: str, config: McpServerConfig, errlog: TextIO) -> None:
        self.name = name
        self.config = config
        self.tools: list[McpTool] = []
        self.failure: str | None = None
        self._errlog = errlog
        self._conn: _Connection | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    def unavailable_reason(self) -> str | None:
        if self._closed:
            return "the MCP servers have been shut down"
        if self.failure is not None:
            return f"the MCP server {self.name!r} did not start: {self.failure}"
        return None

    async def start(self) -> None:
        if self._closed:
            return
        try:
            client = await self._connection().client()
            listed = await _list_tools(client)
        except Exception as exc:
            self.failure = _explain(exc)
            target = self._target()
            log.warning("MCP server %r (%s) did not start: %s", self.name, target, self.failure)
            self._retire()
            self.tools = [self._placeholder(name) for name in self.config.tools or ()]
            return
        self.tools = self._adapt(listed)
        log.info("MCP server %r offers %d tools", self.name, len(self.tools))

    async def call(self, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        if self._closed:
            raise ToolError("The MCP servers have been shut down.")
        conn = self._connection()
        try:
            client = await conn.client()
        except Exception as exc:
            self._retire(conn)
            reason = _explain(exc)
            raise ToolError(f"The MCP server {self.name!r} is unreachable: {reason}") from None
        try:
            result = await client.call_tool(tool, dict(arguments))
        except MCPError as exc:
            if exc.code != mt.CONNECTION_CLOSED and conn.healthy:
                raise ToolError(f"The MCP server {self.name!r} refused: {exc.message}") from None
            raise self._lost(conn) from None
        except Exception:
            if conn.healthy:
                raise  # the registry logs it and tells the model the tool failed
            raise self._lost(conn) from None  # e.g. the SDK's client was closed under us
        return ToolResult(content_text(result), is_error=result.is_error)

    def _lost(self, conn: _Connection) -> ToolError:
        self._retire(conn)
        if self._closed:
            return ToolError("The MCP servers were shut down during the call.")
        return ToolError(
            f"The MCP server {self.name!r} went away during the call; "
            "it will be restarted on the next call."
        )

    async def aclose(self) -> None:
        self._closed = True
        self._retire()
        while self._retiring:
            await asyncio.gather(*self._retiring)

    def _target(self) -> str:
        """What the operator configured, for logs (a URL without credentials or query)."""
        if self.config.command is not None:
            return f"command {self.config.command!r}"
        parts = urlsplit(self.config.url or "")
        return f"url {parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"

    def _connection(self) -> _Connection:
        """The live (or connecting) connection; a new one if there is none or it broke."""
        if self._conn is not None and self._conn.broken:
            self._retire(self._conn)
        if self._conn is None:
            self._conn = _Connection(self.name, self.config, self._errlog)
        return self._conn

    def _retire(self, conn: _Connection | None = None) -> None:
        """Forget a connection (the current one by default) and close it in the background."""
        conn = conn or self._conn
        if conn is None:
            return
        if self._conn is conn:
            self._conn = None
        task = asyncio.create_task(conn.close(), name=f"mcp-close:{self.name}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _adapt(self, listed: list[mt.Tool]) -> list[McpTool]:
        allowed = None if self.config.tools is None else set(self.config.tools)
        adapted: dict[str, McpTool] = {}
        for tool in listed:
            if allowed is not None and tool.name not in allowed:
                continue
            problem = _unusable(tool)
            if problem is not None or tool.name in adapted:
                log.warning("MCP server %r: tool %r skipped: %s", self.name, tool.name, problem)
                continue
            description = tool.description or tool.title or f"The {tool.name} tool."
            adapted[tool.name] = self._tool(tool.name, description, tool.input_schema)
        for missing in sorted((allowed or set()) - set(adapted)):
            log.warning("MCP server %r has no usable tool %r (allow-listed)", self.name, missing)
        return list(adapted.values())

    def _placeholder(self, remote: str) -> McpTool:
        description = f"The {remote} tool of MCP server {self.name!r}."
        return self._tool(remote, description, {"type": "object"})

    def _tool(self, remote: str, description: str, schema: Mapping[str, Any]) -> McpTool:
        return McpTool(
            name=f"{self.name}.{remote}",
            description=description,
            parameters=schema,
            timeout=self.config.timeout,
            remote_name=remote,
            server=self,
        )


class _Connection:
    """One session with a server, entered and exited by its own owner task."""

    def __init__(self, name: str, config: McpServerConfig, errlog: TextIO) -> None:
        self.name = name
        self._config = config
        self._errlog = errlog
        self._client: Client | None = None
        self._error: BaseException | None = None
        self._settled = asyncio.Event()
        self._stop = asyncio.Event()
        self._scope: anyio.CancelScope | None = None
        self._task = asyncio.create_task(self._own(), name=f"mcp:{name}")

    @property
    def broken(self) -> bool:
        """The owner task has ended: the connection failed, was lost or was closed."""
        return self._task.done()

    @property
    def healthy(self) -> bool:
        """Neither broken nor closing."""
        return not self._stop.is_set() and not self._task.done()

    async def client(self) -> Client:
        """The connected client, once the handshake is done; raises why it could not be."""
        await self._settled.wait()
        if self._client is None:
            raise self._error or ConnectionError("the connection is closed")
        return self._client

    async def close(self) -> None:
        """End the session (a handshake in progress is abandoned) and wait for the owner."""
        self._stop.set()
        if self._client is None and self._scope is not None:
            self._scope.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=CLOSE_GRACE_SECONDS)
        if not done and self._scope is not None:
            log.warning("MCP server %r did not shut down in time; cancelling", self.name)
            self._scope.cancel()
        await self._task

    async def _own(self) -> None:
        deadline = anyio.current_time() + self._config.startup_timeout
        try:
            # The outermost scope of this task, so it may outlive the SDK's scopes inside it.
            with anyio.CancelScope(deadline=deadline) as scope:
                self._scope = scope
                async with contextlib.AsyncExitStack() as stack:
                    client = await stack.enter_async_context(self._open(stack))
                    scope.deadline = math.inf
                    self._client = client
                    self._settled.set()
                    await self._stop.wait()
            if self._client is None and self._stop.is_set():
                self._error = ConnectionError("closed while connecting")
            elif self._client is None:
                limit = self._config.startup_timeout
                self._error = TimeoutError(f"no answer within {limit:g} s")
        except Exception as exc:
            self._error = exc
            if self._client is not None:
                log.warning("MCP server %r: connection lost: %s", self.name, _explain(exc))
        finally:
            self._client = None
            self._settled.set()

    def _open(self, stack: contextlib.AsyncExitStack) -> Client:
        cfg = self._config
        if cfg.command is not None:
            params = StdioServerParameters(
                command=cfg.command,
                args=cfg.args,
                env={key: value.get_secret_value() for key, value in cfg.env.items()},
                cwd=cfg.cwd,
            )
            transport = stdio_client(params, errlog=self._errlog)
        else:
            assert cfg.url is not None
            headers = {key: value.get_secret_value() for key, value in cfg.headers.items()}
            # A read timeout would end the whole session, so it must outlast any tool call.
            read = max(300.0, cfg.timeout + 30.0)
            http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=read))
            stack.push_async_callback(http.aclose)
            transport = streamable_http_client(cfg.url, http_client=http)
        return Client(transport, cache=None, client_info=CLIENT_INFO)


async def _list_tools(client: Client) -> list[mt.Tool]:
    tools: list[mt.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _unusable(tool: mt.Tool) -> str | None:
    """Why a listed tool cannot be offered, or ``None``."""
    if not TOOL_NAME.fullmatch(tool.name):
        return f"its name does not match {TOOL_NAME.pattern}"
    schema = tool.input_schema
    if schema.get("type") != "object":
        return "its input schema is not an object schema"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"its input schema is invalid: {exc.message}"
    return None


def content_text(result: mt.CallToolResult) -> str:
    """A tool result as text: text blocks as they are, other blocks summarised."""
    parts = [_block_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _block_text(block: mt.ContentBlock) -> str:
    match block:
        case mt.TextContent():
            return block.text
        case mt.ImageContent() | mt.AudioContent():
            return f"[{block.type}: {block.mime_type}, {_decoded_size(block.data)} bytes]"
        case mt.EmbeddedResource(resource=mt.TextResourceContents() as res):
            return f"[resource {res.uri}]\n{res.text}"
        case mt.EmbeddedResource(resource=mt.BlobResourceContents() as res):
            kind = res.mime_type or "binary"
            return f"[resource {res.uri}: {kind}, {_decoded_size(res.blob)} bytes]"
        case mt.ResourceLink():
            return f"[resource link {block.name}: {block.uri}]"
    return f"[{getattr(block, 'type', 'unknown')} content]"


def _decoded_size(b64: str) -> int:
    return len(b64) * 3 // 4 - (len(b64) - len(b64.rstrip("=")))


def _explain(exc: BaseException) -> str:
    """A one-line reason from an exception, looking inside the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        real = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (real or list(exc.exceptions))[0]
    if isinstance(exc, MCPError):
        return exc.message
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
