"""The agent loop end to end: tool calls in both wire formats, concurrency, errors, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentplatform.api.deps import Services
from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.tools.base import ToolContext, ToolError, ToolRegistry, ToolResult
from tests.conftest import provider_settings
from tests.fakes import FakeAnthropic, FakeOpenAI, FakeToolCall, Script
from tests.support.chat import parse_sse

NUMBERS = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
    "additionalProperties": False,
}


class FnTool:
    """A tool whose behaviour a test supplies (the tool protocol is the seam, not our code)."""

    def __init__(
        self,
        name: str,
        fn: Callable[[Mapping[str, Any]], Any],
        parameters: Mapping[str, Any] = NUMBERS,
        timeout: float = 5.0,
    ) -> None:
        self.name, self.description, self.parameters, self.timeout = name, name, parameters, timeout
        self._fn = fn
        self.calls: list[ToolContext] = []

    def unavailable_reason(self) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        self.calls.append(context)
        value = self._fn(arguments)
        if asyncio.iscoroutine(value):
            value = await value
        return ToolResult(str(value))


def fail(_: Mapping[str, Any]) -> str:
    raise ToolError("division by zero")


async def hang(_: Mapping[str, Any]) -> str:
    await asyncio.Event().wait()
    return "never"


BARRIER = asyncio.Barrier(2)


async def together(arguments: Mapping[str, Any]) -> str:
    async with asyncio.timeout(5):  # both calls must be running at once to pass the barrier
        await BARRIER.wait()
    return f"met {arguments['a']}"


TOOLS = [
    FnTool("add", lambda a: a["a"] + a["b"]),
    FnTool("divide", fail),
    FnTool("wait", hang, timeout=0.3),
    FnTool("meet", together),
    FnTool("secret", lambda a: "should never run"),
]


@pytest.fixture(scope="module")
async def loop_app(
    migrated_url: str,
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FastAPI]:
    extra = provider_settings(fake_anthropic, fake_openai, tmp_path_factory.mktemp("m"))
    app = create_app(Settings(database_url=migrated_url, **extra), tools=ToolRegistry(TOOLS))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def user(loop_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=loop_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        token = (await c.post("/api/auth/guest")).json()["token"]
        c.cookies.clear()
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


async def agent_with(client: httpx.AsyncClient, model: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Tool user", "model": model, "tools": ["add", "divide", "wait", "meet"]}
    response = await client.post("/api/agents", json={**body, **fields})
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def chat(client: httpx.AsyncClient, agent_id: str, content: str) -> list[Any]:
    response = await client.post(f"/api/agents/{agent_id}/chat", json={"content": content})
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


MODELS = ["anthropic:claude-haiku-4-5", "openai:gpt-4o-mini"]


def fake_for(
    model: str, anthropic: FakeAnthropic, openai: FakeOpenAI
) -> FakeAnthropic | FakeOpenAI:
    return anthropic if model.startswith("anthropic") else openai


@pytest.mark.parametrize("model", MODELS)
async def test_model_calls_a_tool_then_answers(
    user: httpx.AsyncClient, model: str, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    fake = fake_for(model, fake_anthropic, fake_openai)
    fake.push(
        Script(text=["Let me add."], tool_calls=[FakeToolCall("add", {"a": 2, "b": 3})]),
        Script(text=["It is ", "5."]),
    )
    agent = await agent_with(user, model)
    events = await chat(user, agent["id"], "What is 2 + 3?")
    kinds = [name for name, _ in events]
    assert kinds[0] == "ack" and kinds[-1] == "done"
    call = next(d for n, d in events if n == "tool_call")
    result = next(d for n, d in events if n == "tool_result")
    assert (call["name"], call["arguments"]) == ("add", {"a": 2, "b": 3})
    assert (result["call_id"], result["content"], result["is_error"]) == (
        call["call_id"],
        "5",
        False,
    )
    assert kinds.index("tool_call") < kinds.index("tool_result")
    seqs = [d["seq"] for _, d in events[1:]]
    assert seqs == list(range(1, len(seqs) + 1))
    # The second model call carries the tool's result in the vendor's own format.
    second = fake.requests[-1].body
    assert "5" in str(second["messages"][-1]) and call["call_id"] in str(second["messages"])
    assert second.get("tools"), "tools are offered while steps remain"
    messages = (
        await user.get(f"/api/conversations/{events[0][1]['conversation_id']}/messages")
    ).json()
    assistant = messages["items"][-1]
    assert assistant["content"] == "Let me add.It is 5."
    assert [p["type"] for p in assistant["parts"]] == ["text", "tool_call", "tool_result", "text"]


@pytest.mark.parametrize("model", MODELS)
async def test_independent_calls_run_concurrently(
    user: httpx.AsyncClient, model: str, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    fake = fake_for(model, fake_anthropic, fake_openai)
    calls = [FakeToolCall("meet", {"a": 1, "b": 0}), FakeToolCall("meet", {"a": 2, "b": 0})]
    fake.push(Script(tool_calls=calls), Script(text=["Both met."]))
    agent = await agent_with(user, model)
    events = await chat(user, agent["id"], "Meet twice")
    results = sorted(d["content"] for n, d in events if n == "tool_result")
    assert results == ["met 1", "met 2"]
    assert events[-1][0] == "done"


async def test_tool_errors_timeouts_and_forbidden_tools_are_results(
    user: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.push(
        Script(
            tool_calls=[
                FakeToolCall("divide", {"a": 1, "b": 0}),
                FakeToolCall("wait", {"a": 1, "b": 1}),
                FakeToolCall("secret", {"a": 1, "b": 1}),
                FakeToolCall("add", {"a": "x"}),
            ]
        ),
        Script(text=["Sorry."]),
    )
    agent = await agent_with(user, "anthropic:claude-haiku-4-5")
    events = await chat(user, agent["id"], "Break things")
    results = {d["name"]: d for n, d in events if n == "tool_result"}
    assert all(r["is_error"] for r in results.values())
    assert "division by zero" in results["divide"]["content"]
    assert "timed out" in results["wait"]["content"]
    assert "no tool named 'secret'" in results["secret"]["content"]
    assert "Invalid arguments" in results["add"]["content"]
    assert TOOLS[4].calls == []  # the agent does not have it, so it never ran
    assert events[-1][0] == "done" and events[-1][1]["status"] == "completed"
    sent = str(fake_anthropic.requests[-1].body["messages"][-1])
    assert "is_error" in sent and "division by zero" in sent


async def test_step_limit_ends_with_a_call_that_offers_no_tools(
    user: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    again = Script(tool_calls=[FakeToolCall("add", {"a": 1, "b": 1})])
    fake_anthropic.push(again, again, Script(text=["Done thinking."]))
    agent = await agent_with(user, "anthropic:claude-haiku-4-5", max_steps=3)
    events = await chat(user, agent["id"], "Loop")
    assert sum(n == "tool_call" for n, _ in events) == 2
    bodies = [r.body for r in fake_anthropic.requests]
    assert len(bodies) == 3
    assert bodies[0].get("tools") and bodies[1].get("tools") and not bodies[2].get("tools")
    assert events[-1][0] == "done"


async def test_next_turn_sees_the_tool_steps(
    user: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    fake_openai.push(
        Script(tool_calls=[FakeToolCall("add", {"a": 20, "b": 22})]),
        Script(text=["42."]),
        Script(text=["As computed."]),
    )
    agent = await agent_with(user, "openai:gpt-4o-mini")
    first = await chat(user, agent["id"], "20 + 22?")
    conversation_id = first[0][1]["conversation_id"]
    response = await user.post(
        f"/api/agents/{agent['id']}/chat",
        json={"content": "Sure?", "conversation_id": conversation_id},
    )
    assert parse_sse(response.text)[-1][0] == "done"
    roles = [m["role"] for m in fake_openai.requests[-1].body["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]


async def test_unknown_tools_are_refused_on_the_agent(user: httpx.AsyncClient) -> None:
    response = await user.post(
        "/api/agents", json={"name": "x", "tools": ["add", "rm_rf"], "model": MODELS[0]}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["type"] == "unknown_tool"
    listed = (await user.get("/api/tools")).json()["items"]
    assert {t["name"] for t in listed} >= {"add", "divide", "meet"}
    for body in ({"tools": "add"}, {"tools": ["Bad Name"]}, {"max_steps": 0}, {"max_steps": 33}):
        bad = await user.post("/api/agents", json={"name": "x", **body})
        assert bad.status_code == 422, body


async def test_a_task_run_without_a_chat(
    user: httpx.AsyncClient, loop_app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.push(
        Script(tool_calls=[FakeToolCall("add", {"a": 1, "b": 2})]), Script(text=["3"])
    )
    agent = await agent_with(user, "anthropic:claude-haiku-4-5")
    created = await user.post(f"/api/agents/{agent['id']}/runs", json={"input": "Add 1 and 2"})
    assert created.status_code == 201
    run = created.json()
    assert run["status"] in {"queued", "in_progress", "completed"}
    events = parse_sse((await user.get(f"/api/runs/{run['id']}/events")).text)
    assert [n for n, _ in events][-1] == "done"
    assert any(n == "tool_result" and d["content"] == "3" for n, d in events)
    final = (await user.get(f"/api/runs/{run['id']}")).json()
    assert final["status"] == "completed"
    counted = (await user.get(f"/api/agents/{agent['id']}")).json()
    assert (counted["total_runs"], counted["successful_runs"]) == (1, 1)
    conversation = (await user.get(f"/api/conversations/{run['conversation_id']}")).json()
    assert conversation["title"] == "Add 1 and 2"
    assert (await user.post(f"/api/agents/{agent['id']}/runs", json={})).status_code == 422


async def test_cancel_during_a_slow_tool(
    user: httpx.AsyncClient, loop_app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.push(Script(tool_calls=[FakeToolCall("wait", {"a": 1, "b": 1})]))
    agent = await agent_with(user, "anthropic:claude-haiku-4-5")
    run = (await user.post(f"/api/agents/{agent['id']}/runs", json={"input": "wait"})).json()
    services: Services = loop_app.state.services
    async for event in services.bus.subscribe(run["id"]):
        if event.type == "tool_call":
            break
    await user.post(f"/api/runs/{run['id']}/cancel")
    await services.runner.wait(run["id"])
    assert (await user.get(f"/api/runs/{run['id']}")).json()["status"] == "cancelled"
