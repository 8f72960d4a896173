"""Chat over HTTP: the SSE turn, run state, replay, cancel, provider faults, counts, history."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from agentplatform.api.deps import Services
from tests.conftest import FAKE_REPLY
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import Script
from tests.support.chat import make_agent, parse_sse


def services(app: FastAPI) -> Services:
    s: Services = app.state.services
    return s


async def chat(client: httpx.AsyncClient, agent_id: str, content: str, **extra: str) -> list:
    response = await client.post(f"/api/agents/{agent_id}/chat", json={"content": content, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


async def test_a_turn_streams_and_is_stored(
    guest: httpx.AsyncClient, app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest, instructions="Be kind.")
    events = await chat(guest, agent["id"], "Hello there")
    names = [name for name, _ in events]
    assert names[0] == "ack" and names[-1] == "done"
    assert names.count("done") + names.count("error") == 1
    ack = events[0][1]
    deltas = [data for name, data in events if name == "delta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert "".join(d["text"] for d in deltas) == "".join(FAKE_REPLY)
    done = events[-1][1]
    assert done["status"] == "completed" and done["seq"] == len(deltas) + 1
    assert done["message_id"] == ack["assistant_message_id"]

    sent = fake_anthropic.calls("/v1/messages")[-1].body
    assert sent["system"] == "Be kind." and sent["stream"] is True
    assert sent["messages"][-1]["role"] == "user"

    run = (await guest.get(f"/api/runs/{ack['run_id']}")).json()
    assert run["status"] == "completed" and run["last_seq"] == done["seq"]
    assert run["output_tokens"] is not None
    messages = (await guest.get(f"/api/conversations/{ack['conversation_id']}/messages")).json()
    assert [(m["role"], m["status"]) for m in messages["items"]] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert messages["items"][1]["content"] == "".join(FAKE_REPLY)
    assert messages["items"][1]["run_id"] == ack["run_id"]
    assert messages["items"][0]["run_id"] is None
    fresh = (await guest.get(f"/api/agents/{agent['id']}")).json()
    assert (fresh["total_runs"], fresh["successful_runs"]) == (1, 1)
    conversation = (await guest.get(f"/api/conversations/{ack['conversation_id']}")).json()
    assert conversation["title"] == "Hello there"


async def test_the_openai_wire_works_the_same(
    guest: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    agent = await make_agent(guest, model="openai:gpt-4o-mini", instructions="Short answers.")
    events = await chat(guest, agent["id"], "Hi")
    assert events[-1][0] == "done"
    body = fake_openai.calls("/chat/completions")[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Short answers."}
    assert body["model"] == "gpt-4o-mini"


async def test_history_is_sent_on_the_next_turn(
    guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    first = await chat(guest, agent["id"], "My name is Ada.")
    conversation_id = first[0][1]["conversation_id"]
    await chat(guest, agent["id"], "What is my name?", conversation_id=conversation_id)
    sent = fake_anthropic.calls("/v1/messages")[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "Ada" in str(sent[0]["content"]) and "name?" in str(sent[2]["content"])


async def test_user_message_is_stored_before_the_model_is_called(
    guest: httpx.AsyncClient, app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    fake_anthropic.push(Script(text=["late"], first_token_delay=0.5))
    request = guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Store me"})
    import asyncio

    task = asyncio.create_task(request)
    await fake_anthropic.wait_for_request()
    conversations = (await guest.get("/api/conversations")).json()["items"]
    messages = (await guest.get(f"/api/conversations/{conversations[0]['id']}/messages")).json()
    assert [(m["role"], m["content"], m["status"]) for m in messages["items"]] == [
        ("user", "Store me", "complete"),
        ("assistant", "", "streaming"),
    ]
    response = await task
    assert parse_sse(response.text)[-1][0] == "done"


async def test_same_client_msg_id_never_runs_twice(
    guest: httpx.AsyncClient, app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    first = await chat(guest, agent["id"], "Once", client_msg_id="m-1")
    ack = first[0][1]
    again = await chat(
        guest, agent["id"], "Once", client_msg_id="m-1", conversation_id=ack["conversation_id"]
    )
    assert again[0][1]["run_id"] == ack["run_id"] and again[0][1]["duplicate"] is True
    assert again[0][1]["message_id"] == ack["message_id"]
    assert [e for e in again if e[0] != "ack"] == [e for e in first if e[0] != "ack"]
    assert len(fake_anthropic.calls("/v1/messages")) == 1
    messages = (await guest.get(f"/api/conversations/{ack['conversation_id']}/messages")).json()
    assert len(messages["items"]) == 2
    assert (await guest.get(f"/api/agents/{agent['id']}")).json()["total_runs"] == 1


async def test_events_replay_after_a_seq(guest: httpx.AsyncClient) -> None:
    agent = await make_agent(guest)
    events = await chat(guest, agent["id"], "Replay me")
    run_id = events[0][1]["run_id"]
    replay = await guest.get(f"/api/runs/{run_id}/events", params={"after": 2})
    replayed = parse_sse(replay.text)
    assert [d["seq"] for _, d in replayed] == [d["seq"] for _, d in events[1:] if d["seq"] > 2]
    by_header = await guest.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "4"})
    assert [d["seq"] for _, d in parse_sse(by_header.text)] == [5, 6]
    everything = parse_sse((await guest.get(f"/api/runs/{run_id}/events")).text)
    assert everything == events[1:]


async def test_cancel_over_http(
    guest: httpx.AsyncClient, app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    import asyncio

    agent = await make_agent(guest)
    fake_anthropic.push(Script(text=["one", " two"] + [" more"] * 50, token_delay=0.2))
    task = asyncio.create_task(
        guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Go"})
    )
    call = await fake_anthropic.wait_for_request()
    run = (await guest.get("/api/conversations")).json()["items"][0]
    runs_of = await services(app).runs.get(
        (await guest.get("/api/auth/session")).json()["user"]["id"],
        (await _latest_run_id(app, run["id"])),
    )
    cancelled = await guest.post(f"/api/runs/{runs_of.id}/cancel")
    assert cancelled.status_code == 202
    assert await call.wait_disconnected(within=0.5), "the provider call did not stop in 500 ms"
    events = parse_sse((await task).text)
    assert events[-1][0] == "done" and events[-1][1]["status"] == "cancelled"
    final = (await guest.get(f"/api/runs/{runs_of.id}")).json()
    assert final["status"] == "cancelled"
    agent_now = (await guest.get(f"/api/agents/{agent['id']}")).json()
    assert (agent_now["total_runs"], agent_now["successful_runs"]) == (1, 0)


async def _latest_run_id(app: FastAPI, conversation_id: str) -> str:
    from sqlalchemy import select

    from agentplatform.store.tables import Run

    async with services(app).db.transaction() as tx:
        run_id = await tx.scalar(
            select(Run.id).where(Run.conversation_id == conversation_id).order_by(Run.id.desc())
        )
    assert run_id is not None
    return run_id


@pytest.mark.parametrize(
    ("scripts", "status", "code", "calls"),
    [
        ([Script.error(401)], "failed", "provider_auth", 1),
        ([Script.error(429, retry_after=0), Script(text=["ok"])], "completed", None, 2),
        ([Script.error(529), Script.error(500), Script(text=["ok"])], "completed", None, 3),
        (
            [Script.error(529), Script.error(529), Script.error(529)],
            "failed",
            "provider_overloaded",
            3,
        ),
        (
            [Script.error(400, error_message="prompt is too long")],
            "failed",
            "provider_bad_request",
            1,
        ),
    ],
)
async def test_provider_faults_before_the_first_token(
    guest: httpx.AsyncClient,
    fake_anthropic: FakeAnthropic,
    scripts: list[Script],
    status: str,
    code: str | None,
    calls: int,
) -> None:
    agent = await make_agent(guest)
    fake_anthropic.push(*scripts)
    events = await chat(guest, agent["id"], "Try")
    name, last = events[-1]
    assert last["status"] == status
    if code:
        assert name == "error" and last["code"] == code
        assert "sk-ant" not in str(events)
    else:
        assert name == "done"
    assert len(fake_anthropic.calls("/v1/messages")) == calls
    agent_now = (await guest.get(f"/api/agents/{agent['id']}")).json()
    assert agent_now["total_runs"] == 1
    assert agent_now["successful_runs"] == (1 if status == "completed" else 0)


async def test_drop_after_tokens_keeps_the_partial_text(
    guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    fake_anthropic.push(
        Script(text=["Partial", " answer", " never", " finished"], disconnect_after=2)
    )
    events = await chat(guest, agent["id"], "Go")
    name, last = events[-1]
    assert name == "error" and last["status"] == "interrupted"
    assert len(fake_anthropic.calls("/v1/messages")) == 1  # never retried after tokens
    messages = (await guest.get(f"/api/conversations/{last['conversation_id']}/messages")).json()
    assistant = messages["items"][-1]
    assert (assistant["status"], assistant["content"]) == ("interrupted", "Partial answer")


async def test_chat_validation_and_ownership(guest: httpx.AsyncClient, new_guest: object) -> None:
    agent = await make_agent(guest)
    path = f"/api/agents/{agent['id']}/chat"
    for body in ({}, {"content": ""}, {"content": "x" * 32_001}, {"content": "a", "extra": 1},
                 {"content": "a", "client_msg_id": "has space"}):  # fmt: skip
        assert (await guest.post(path, json=body)).status_code == 422, body
    assert (await guest.post("/api/agents/nope/chat", json={"content": "a"})).status_code == 404
    other = await make_agent(guest)
    events = await chat(guest, other["id"], "first")
    wrong = await guest.post(
        path, json={"content": "a", "conversation_id": events[0][1]["conversation_id"]}
    )
    assert wrong.status_code == 404
    await guest.patch(f"/api/agents/{agent['id']}", json={"status": "archived"})
    archived = await guest.post(path, json={"content": "a"})
    assert archived.status_code == 409 and archived.json()["error"]["code"] == "conflict"


async def test_models_list_and_unusable_models(guest: httpx.AsyncClient) -> None:
    listed = (await guest.get("/api/models")).json()
    ids = {m["id"] for m in listed["items"]}
    assert "anthropic:claude-sonnet-4-6" in ids and "openai:gpt-4o-mini" in ids
    assert listed["default"] and listed["default"].startswith("anthropic:")
    assert "sk-" not in str(listed)
    bad = await guest.post("/api/agents", json={"name": "x", "model": "nosuch:model"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["type"] == "model_unavailable"
    agent = await make_agent(guest)
    patch = await guest.patch(f"/api/agents/{agent['id']}", json={"model": "nosuch:model"})
    assert patch.status_code == 422
    default = (await guest.post("/api/agents", json={"name": "d"})).json()
    assert default["model"] == listed["default"]
