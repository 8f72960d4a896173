"""MCP servers as tool sources, against the real fake server over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import mcp_types as mt
import pytest

from agentplatform.tools.base import ToolContext, ToolRegistry, ToolResult
from agentplatform.tools.mcp import McpServers, McpTool, content_text
from agentplatform.tools.mcp_config import (
    McpConfigError,
    McpServerConfig,
    load_mcp_config,
    parse_mcp_config,
)
from tests.fakes.mcp_server import REPO_ROOT, HttpMcpServer

CTX = ToolContext(user_id="u", conversation_id="c", run_id="r")
TRANSPORTS = ["local", "remote"]  # the fake over stdio, and over streamable HTTP
STDIO: dict[str, Any] = {
    "command": sys.executable,
    "args": ["-m", "tests.fakes.mcp_server"],
    "cwd": str(REPO_ROOT),
}


def config(**servers: dict[str, Any]) -> Any:
    return parse_mcp_config({"servers": servers})


def children() -> set[int]:
    """Live (or unreaped) child processes of this test process, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            found.add(int(entry.name))
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpMcpServer]:
    with HttpMcpServer() as server:
        yield server


@pytest.fixture(scope="module")
async def servers(http_server: HttpMcpServer) -> AsyncIterator[McpServers]:
    limited = {"url": http_server.url, "headers": {"X-Api-Key": "k-123"}, "tools": ["header"]}
    cfg = config(local=STDIO, remote={"url": http_server.url}, limited=limited)
    async with McpServers(cfg) as started:
        yield started


@pytest.fixture(scope="module")
def registry(servers: McpServers) -> ToolRegistry:
    return ToolRegistry(servers.tools())


@pytest.fixture(params=TRANSPORTS)
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tool(tools: ToolRegistry | McpServers, name: str) -> McpTool:
    found = tools.get(name) if isinstance(tools, ToolRegistry) else _find(tools, name)
    assert isinstance(found, McpTool), name
    return found


def _find(servers: McpServers, name: str) -> object:
    return next((t for t in servers.tools() if t.name == name), None)


async def call(registry: ToolRegistry, name: str, /, **arguments: Any) -> ToolResult:
    return await registry.call(name, arguments, CTX)


# -- listing and calling ---------------------------------------------------------------------


async def test_tools_are_listed_namespaced_by_server(registry: ToolRegistry, server: str) -> None:
    names = {n.removeprefix(f"{server}.") for n in registry.names() if n.startswith(f"{server}.")}
    assert {"echo", "add", "slow", "fail", "boom", "refuse", "gather", "crash"} <= names
    echo = tool(registry, f"{server}.echo")
    assert echo.description == "Return the text unchanged."
    assert echo.parameters["properties"]["text"]["type"] == "string"
    assert echo.parameters["required"] == ["text"]
    assert echo.timeout == 30.0
    assert echo.unavailable_reason() is None


async def test_tools_with_names_vendors_refuse_are_not_offered(registry: ToolRegistry) -> None:
    assert not [n for n in registry.names() if n.endswith("dotted.name")]


async def test_allow_list_and_headers(registry: ToolRegistry) -> None:
    assert [n for n in registry.names() if n.startswith("limited.")] == ["limited.header"]
    result = await call(registry, "limited.header", name="X-Api-Key")
    assert result == ToolResult("k-123")
    unauthenticated = await call(registry, "remote.header", name="X-Api-Key")
    assert unauthenticated == ToolResult("<none>")


async def test_call_returns_the_text(registry: ToolRegistry, server: str) -> None:
    assert await call(registry, f"{server}.add", a=2, b=3) == ToolResult("5")
    assert await call(registry, f"{server}.echo", text="héllo") == ToolResult("héllo")


async def test_arguments_are_checked_against_the_input_schema(
    registry: ToolRegistry, server: str
) -> None:
    result = await call(registry, f"{server}.add", a="two", b=3)
    assert result.is_error
    assert "Invalid arguments" in result.content


async def test_error_results_map_to_is_error(registry: ToolRegistry, server: str) -> None:
    assert await call(registry, f"{server}.fail") == ToolResult("it failed on purpose", True)
    boom = await call(registry, f"{server}.boom")
    assert boom.is_error
    assert "boom" in boom.content


async def test_protocol_errors_become_error_results(registry: ToolRegistry, server: str) -> None:
    result = await call(registry, f"{server}.refuse")
    assert result.is_error
    assert "refused by the fake" in result.content


async def test_non_text_blocks_are_summarised(registry: ToolRegistry, server: str) -> None:
    result = await call(registry, f"{server}.media")
    assert result.content.splitlines() == [
        "here you go",
        "[image: image/png, 32 bytes]",
        "[audio: audio/wav, 32 bytes]",
        "[resource file:///notes.txt]",
        "embedded text",
        "[resource file:///blob.bin: application/octet-stream, 32 bytes]",
        "[resource link linked: file:///linked.txt]",
    ]


async def test_timeout_is_an_error_result_and_the_session_survives(
    servers: McpServers, server: str
) -> None:
    impatient = dataclasses.replace(tool(servers, f"{server}.slow"), timeout=0.2)
    registry = ToolRegistry([impatient, tool(servers, f"{server}.echo")])
    result = await call(registry, f"{server}.slow", seconds=30)
    assert result.is_error
    assert "timed out after 0.2 s" in result.content
    assert await call(registry, f"{server}.echo", text="still here") == ToolResult("still here")


async def test_concurrent_calls_to_one_server(registry: ToolRegistry, server: str) -> None:
    # ``gather`` answers only once all four calls are inside the server at the same time.
    key = f"together-{server}"
    calls = [call(registry, f"{server}.gather", key=key, count=4) for _ in range(4)]
    calls += [call(registry, f"{server}.add", a=i, b=i) for i in range(4)]
    async with asyncio.timeout(20):
        results = await asyncio.gather(*calls)
    assert [r.content for r in results[:4]] == [f"{key}: 4 together"] * 4
    assert [r.content for r in results[4:]] == ["0", "2", "4", "6"]


# -- failures and lifecycle ------------------------------------------------------------------


async def test_a_server_that_fails_to_start_is_unavailable_others_work() -> None:
    cfg = config(
        good=STDIO,
        missing={"command": "/nonexistent/mcp-server", "tools": ["read", "write"]},
        refused={"url": f"http://127.0.0.1:{closed_port()}/mcp"},
        mute={"command": sys.executable, "args": ["-c", "import sys; sys.stdin.read()"]}
        | {"startup_timeout": 0.5, "tools": ["anything"]},
    )
    async with McpServers(cfg) as servers:
        registry = ToolRegistry(servers.tools())
        failures = servers.failures()
        assert set(failures) == {"missing", "refused", "mute"}
        assert "No such file" in failures["missing"]
        assert "no answer within 0.5 s" in failures["mute"]
        assert not [n for n in registry.names() if n.startswith("refused.")]
        infos = {info.name: info for info in registry.infos()}
        assert not infos["missing.read"].available
        assert "did not start" in (infos["missing.read"].reason or "")
        result = await call(registry, "missing.write")
        assert result.is_error
        assert "unavailable" in result.content
        assert await call(registry, "good.echo", text="fine") == ToolResult("fine")


async def test_a_stdio_server_that_dies_is_restarted_on_the_next_call() -> None:
    async with McpServers(config(flaky=STDIO)) as servers:
        registry = ToolRegistry(servers.tools())
        first = await call(registry, "flaky.pid")
        died = await call(registry, "flaky.crash")
        assert died.is_error
        assert "restarted on the next call" in died.content
        second = await call(registry, "flaky.pid")
        assert not second.is_error
        assert second.content != first.content
        assert await call(registry, "flaky.add", a=1, b=1) == ToolResult("2")


async def test_calls_in_flight_when_a_server_dies_get_error_results() -> None:
    async with McpServers(config(flaky=STDIO)) as servers:
        registry = ToolRegistry(servers.tools())
        waiting = asyncio.create_task(call(registry, "flaky.gather", key="k", count=2))
        died = await call(registry, "flaky.crash")
        stranded = await waiting
        for result in (died, stranded):
            assert result.is_error
            assert "went away" in result.content or "unreachable" in result.content


async def test_an_http_server_that_dies_gives_error_results() -> None:
    with HttpMcpServer() as http:
        servers = McpServers(config(web={"url": http.url}))
        await servers.start()
        registry = ToolRegistry(servers.tools())
        assert await call(registry, "web.echo", text="up") == ToolResult("up")
        http.stop()
        down = await call(registry, "web.echo", text="down?")
        assert down.is_error
        again = await call(registry, "web.echo", text="down?")
        assert again.is_error
        assert "web" in again.content
        await servers.aclose()


async def test_aclose_leaves_no_child_processes() -> None:
    before = children()
    servers = McpServers(config(one=STDIO, two=STDIO))
    await servers.start()
    spawned = children() - before
    assert len(spawned) == 2
    assert await call(ToolRegistry(servers.tools()), "two.echo", text="x") == ToolResult("x")
    await servers.aclose()
    assert not children() - before  # zombies would be listed too: every child was reaped


async def test_aclose_with_a_call_in_flight() -> None:
    before = children()
    servers = McpServers(config(busy=STDIO))
    await servers.start()
    registry = ToolRegistry(servers.tools())
    pending = asyncio.create_task(call(registry, "busy.gather", key="never", count=2))
    await servers.aclose()
    result = await pending
    assert result.is_error
    assert not children() - before
    after = await call(registry, "busy.echo", text="x")
    assert after.is_error
    assert "shut down" in after.content


async def test_aclose_abandons_a_start_that_was_interrupted() -> None:
    before = children()
    mute = {"command": sys.executable, "args": ["-c", "import sys; sys.stdin.read()"]}
    servers = McpServers(config(mute=mute))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(servers.start(), 0.5)  # the handshake goes on in the background
    async with asyncio.timeout(8):  # far less than the 30 s startup timeout
        await servers.aclose()
    assert not children() - before


async def test_env_and_cwd_reach_a_stdio_server_and_our_environment_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTPLATFORM_DATABASE_URL", "postgresql+asyncpg://secret@db/x")
    env = {"FAKE_TOKEN": "t-42", "PYTHONPATH": str(REPO_ROOT)}  # cwd is not the repository
    cfg = config(box=STDIO | {"env": env, "cwd": str(tmp_path)})
    async with McpServers(cfg) as servers:
        registry = ToolRegistry(servers.tools())
        assert await call(registry, "box.env_var", name="FAKE_TOKEN") == ToolResult("t-42")
        leaked = await call(registry, "box.env_var", name="AGENTPLATFORM_DATABASE_URL")
        assert leaked == ToolResult("<unset>")
        assert await call(registry, "box.cwd") == ToolResult(str(tmp_path))


def test_content_text_falls_back_to_structured_content() -> None:
    structured = mt.CallToolResult(content=[], structured_content={"n": 1, "s": "é"})
    assert content_text(structured) == '{"n": 1, "s": "é"}'
    assert content_text(mt.CallToolResult(content=[])) == ""


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"servers": {}, "extra": 1}, "extra: unknown key"),
        ({"servers": {"a": {"command": "x", "bogus": 1}}}, "servers.a.bogus: unknown key"),
        ({"servers": {"Files": {"command": "x"}}}, "server name 'Files' must match"),
        ({"servers": {"9lives": {"command": "x"}}}, "must match"),
        ({"servers": {"a.b": {"command": "x"}}}, "must match"),
        ({"servers": {"a" * 33: {"command": "x"}}}, "must match"),
        ({"servers": {"a": {"command": "x", "url": "http://h/mcp"}}}, "exactly one of"),
        ({"servers": {"a": {}}}, "exactly one of"),
        ({"servers": {"a": {"command": "x", "headers": {"A": "b"}}}}, "headers only apply"),
        ({"servers": {"a": {"url": "http://h/mcp", "args": ["-v"]}}}, "args only apply"),
        ({"servers": {"a": {"url": "file:///etc/passwd"}}}, "http:// or https://"),
        ({"servers": {"a": {"command": "x", "timeout": 0}}}, "servers.a.timeout"),
        ({"servers": {"a": {"command": "x", "tools": ["a b"]}}}, "not a usable tool name"),
        ({"servers": {"a": {"command": "x", "tools": ["t", "t"]}}}, "lists a name twice"),
    ],
)
def test_config_validation_errors(data: Any, message: str) -> None:
    with pytest.raises(McpConfigError) as caught:
        parse_mcp_config(data)
    assert message in str(caught.value)


def test_config_errors_do_not_echo_secrets() -> None:
    data = {"servers": {"a": {"url": "ftp://user:hunter2@h/", "headers": {"A": "tok-9"}}}}
    with pytest.raises(McpConfigError) as caught:
        parse_mcp_config(data)
    assert "hunter2" not in str(caught.value)
    assert "tok-9" not in str(caught.value)
    server = parse_mcp_config({"servers": {"a": {"url": "http://h", "headers": {"A": "tok-9"}}}})
    assert "tok-9" not in repr(server)


def test_config_files_in_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "mcp.json").write_text(
        '{"servers": {"files": {"command": "srv", "cwd": "work", "timeout": 5}}}'
    )
    (tmp_path / "mcp.toml").write_text(
        '[servers.search]\nurl = "https://search.example/mcp"\n'
        'headers = { Authorization = "Bearer x" }\ntools = ["find"]\n'
    )
    files = load_mcp_config(tmp_path / "mcp.json").servers["files"]
    assert files == McpServerConfig(command="srv", cwd=tmp_path.resolve() / "work", timeout=5)
    assert files.transport == "stdio"
    search = load_mcp_config(tmp_path / "mcp.toml").servers["search"]
    assert search.transport == "http"
    assert search.headers["Authorization"].get_secret_value() == "Bearer x"
    assert search.tools == ["find"]


def test_unreadable_config_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "mcp.yaml").write_text("servers: {}")
    for path, message in [
        (tmp_path / "bad.json", "is not valid JSON"),
        (tmp_path / "mcp.yaml", "must end in .json or .toml"),
        (tmp_path / "absent.json", "cannot be read"),
    ]:
        with pytest.raises(McpConfigError, match=message):
            load_mcp_config(path)
