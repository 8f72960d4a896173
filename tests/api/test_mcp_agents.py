"""An agent using an operator-declared MCP server's tool, end to end through the app."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.tools.mcp_config import McpConfigError
from tests.conftest import provider_settings
from tests.fakes import FakeAnthropic, FakeOpenAI, FakeToolCall, Script
from tests.support.chat import parse_sse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def mcp_app(
    migrated_url: str,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FastAPI]:
    folder = tmp_path_factory.mktemp("mcp")
    config = folder / "mcp.json"
    server = {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_server"], "cwd": str(ROOT)}
    config.write_text(json.dumps({"servers": {"demo": server}}))
    settings = Settings(
        database_url=migrated_url,
        mcp_config=config,
        **provider_settings(fake_anthropic, fake_openai, folder),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_mcp_tools_are_offered_and_called(
    mcp_app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    transport = httpx.ASGITransport(app=mcp_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        token = (await c.post("/api/auth/guest")).json()["token"]
        c.cookies.clear()
        c.headers["Authorization"] = f"Bearer {token}"
        names = {t["name"] for t in (await c.get("/api/tools")).json()["items"]}
        assert {"demo.add", "demo.echo"} <= names
        agent = (
            await c.post(
                "/api/agents",
                json={"name": "m", "model": "anthropic:claude-haiku-4-5", "tools": ["demo.add"]},
            )
        ).json()
        fake_anthropic.push(
            Script(tool_calls=[FakeToolCall("demo__add", {"a": 40, "b": 2})]),
            Script(text=["42"]),
        )
        response = await c.post(f"/api/agents/{agent['id']}/chat", json={"content": "add"})
        events = parse_sse(response.text)
    offered = fake_anthropic.requests[0].body["tools"]
    assert [t["name"] for t in offered] == ["demo__add"]  # vendors refuse dots in names
    call = next(d for n, d in events if n == "tool_call")
    result = next(d for n, d in events if n == "tool_result")
    assert call["name"] == "demo.add"
    assert (result["content"].strip(), result["is_error"]) == ("42", False)
    assert events[-1][0] == "done"


def test_a_bad_mcp_file_stops_start_up(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"servers": {"x": {"command": "a", "url": "http://b"}}}))
    with pytest.raises(McpConfigError):
        create_app(Settings(mcp_config=config))
