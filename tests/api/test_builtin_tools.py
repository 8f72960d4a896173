"""The built-in tools through a real agent turn: real results, and the SSRF guard on duty."""

from __future__ import annotations

import httpx

from tests.fakes import FakeAnthropic, FakeToolCall, Script
from tests.support.chat import make_agent, parse_sse


async def test_calculator_and_http_fetch_in_one_turn(
    guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    listed = {t["name"]: t for t in (await guest.get("/api/tools")).json()["items"]}
    assert {"calculator", "current_time", "http_fetch"} <= set(listed)
    assert all(listed[n]["available"] for n in ("calculator", "current_time", "http_fetch"))
    agent = await make_agent(guest, tools=["calculator", "http_fetch"])
    fake_anthropic.push(
        Script(
            text=["Checking."],
            tool_calls=[
                FakeToolCall("calculator", {"expression": "17 * 23 + 2 ** 10"}),
                FakeToolCall("http_fetch", {"url": f"{fake_anthropic.origin}/v1/models"}),
                FakeToolCall("current_time", {"timezone": "Asia/Seoul"}),
            ],
        ),
        Script(text=["1415, and I may not fetch that."]),
    )
    response = await guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Go"})
    events = parse_sse(response.text)
    results = {d["name"]: d for n, d in events if n == "tool_result"}
    assert results["calculator"]["content"] == "1415" and not results["calculator"]["is_error"]
    # The fake provider listens on loopback: the agent's fetch of it is refused.
    assert results["http_fetch"]["is_error"]
    assert "loopback" in results["http_fetch"]["content"].lower()
    # current_time is not among this agent's tools.
    assert results["current_time"]["is_error"]
    assert events[-1][0] == "done"


async def test_run_python_in_the_conversation_workspace(
    guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest, tools=["run_python"])
    code = "open('notes.txt', 'w').write('kept'); print(6 * 7)"
    fake_anthropic.push(
        Script(tool_calls=[FakeToolCall("run_python", {"code": code})]),
        Script(text=["42"]),
        Script(
            tool_calls=[FakeToolCall("run_python", {"code": "print(open('notes.txt').read())"})]
        ),
        Script(text=["Still there."]),
    )
    first = parse_sse(
        (await guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Compute"})).text
    )
    result = next(d for n, d in first if n == "tool_result")
    assert not result["is_error"] and "42" in result["content"], result
    second = parse_sse(
        (
            await guest.post(
                f"/api/agents/{agent['id']}/chat",
                json={"content": "Again", "conversation_id": first[0][1]["conversation_id"]},
            )
        ).text
    )
    again = next(d for n, d in second if n == "tool_result")
    assert "kept" in again["content"]
