"""The WebSocket workspace, through a real client against a running server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agentplatform.api.deps import SESSION_COOKIE, Services
from tests.conftest import FAKE_REPLY, GuestFactory
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import Script
from tests.support.chat import (
    frames_until_end,
    make_agent,
    next_frame,
    token_of,
    user_id_of,
)


def open_ws(live: str, token: str | None = None, path: str = "/ws", **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    return connect(f"ws://{live}{path}", additional_headers=headers, open_timeout=5, **kw)


async def send(ws: ClientConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


async def start_chat(
    ws: ClientConnection, agent_id: str, content: str, **extra: Any
) -> dict[str, Any]:
    await send(ws, type="chat", agent_id=agent_id, content=content, **extra)
    ack = await next_frame(ws)
    assert ack["type"] == "ack", ack
    return ack


async def test_welcome_then_a_streamed_reply(live: str, guest: httpx.AsyncClient) -> None:
    agent = await make_agent(guest)
    async with open_ws(live, token_of(guest)) as ws:
        welcome = await next_frame(ws)
        assert welcome["type"] == "welcome"
        assert welcome["user_id"] == await user_id_of(guest)
        ack = await start_chat(ws, agent["id"], "Hello", client_msg_id="c1")
        assert {"conversation_id", "message_id", "run_id"} <= set(ack)
        frames = await frames_until_end(ws, ack["run_id"])
    deltas = [f for f in frames if f["type"] == "delta"]
    assert "".join(f["text"] for f in deltas) == "".join(FAKE_REPLY)
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert frames[-1]["type"] == "done" and frames[-1]["status"] == "completed"
    agent_now = (await guest.get(f"/api/agents/{agent['id']}")).json()
    assert (agent_now["total_runs"], agent_now["successful_runs"]) == (1, 1)


async def test_the_seed_path_with_the_users_own_id(live: str, guest: httpx.AsyncClient) -> None:
    me = await user_id_of(guest)
    async with open_ws(live, token_of(guest), path=f"/workspace/{me}") as ws:
        assert (await next_frame(ws))["type"] == "welcome"


@pytest.mark.parametrize(
    "case", ["no-session", "garbage", "someone-elses-path", "foreign-origin", "basic-auth"]
)
async def test_handshake_refusals(live: str, new_guest: GuestFactory, case: str) -> None:
    me, other = await new_guest(), await new_guest()
    other_id = await user_id_of(other)
    token = token_of(me)
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    attempts = {
        "no-session": open_ws(live),
        "garbage": open_ws(live, "not-a-token"),
        "someone-elses-path": open_ws(live, token, path=f"/workspace/{other_id}"),
        "foreign-origin": open_ws(live, headers=cookie, origin="https://evil.example"),
        "basic-auth": open_ws(live, headers={"Authorization": "Basic abc"}),
    }
    with pytest.raises(InvalidStatus) as refused:
        async with attempts[case]:
            pass
    assert refused.value.response.status_code == 403


async def test_cookie_from_same_origin_is_accepted(live: str, guest: httpx.AsyncClient) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={token_of(guest)}"}
    async with open_ws(live, headers=cookie, origin=f"http://{live}") as ws:
        assert (await next_frame(ws))["type"] == "welcome"


async def test_expired_and_revoked_sessions_are_refused(
    live: str, guest: httpx.AsyncClient
) -> None:
    token = token_of(guest)
    await guest.post("/api/auth/logout")
    with pytest.raises(InvalidStatus):
        async with open_ws(live, token):
            pass


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"type": "dance"}',
        '{"no": "type"}',
        '{"type": "chat", "agent_id": "x"}',
        '{"type": "chat", "agent_id": "x", "content": ""}',
        '{"type": "resume", "run_id": "x", "after_seq": -1}',
        '{"type": "ping", "extra": 1}',
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays(
    live: str, guest: httpx.AsyncClient, raw: str
) -> None:
    async with open_ws(live, token_of(guest)) as ws:
        await next_frame(ws)
        await ws.send(raw)
        error = await next_frame(ws)
        assert error["type"] == "error" and error["code"] == "invalid_frame"
        await send(ws, type="ping", nonce="still-here")
        assert await next_frame(ws) == {"type": "pong", "nonce": "still-here"}


async def test_unknown_objects_answer_not_found(live: str, guest: httpx.AsyncClient) -> None:
    async with open_ws(live, token_of(guest)) as ws:
        await next_frame(ws)
        for frame in (
            {"type": "chat", "agent_id": "missing", "content": "hi"},
            {"type": "cancel", "run_id": "missing"},
            {"type": "resume", "run_id": "missing", "after_seq": 0},
        ):
            await send(ws, **frame)
            error = await next_frame(ws)
            assert (error["type"], error["code"]) == ("error", "not_found")
            assert "run_id" not in error


async def test_oversized_frame_closes_with_1009(
    live: str, guest: httpx.AsyncClient, app: FastAPI
) -> None:
    services: Services = app.state.services
    limit = services.settings.ws_max_frame_bytes
    async with open_ws(live, token_of(guest), max_size=None) as ws:
        await next_frame(ws)
        await ws.send(json.dumps({"type": "ping", "nonce": "x" * (limit + 10)}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_resume_after_a_dropped_socket(
    live: str, guest: httpx.AsyncClient, app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    words = [f" w{i}" for i in range(30)]
    fake_anthropic.push(Script(text=words, token_delay=0.02))
    async with open_ws(live, token_of(guest)) as ws:
        await next_frame(ws)
        ack = await start_chat(ws, agent["id"], "Long answer please")
        seen = [await next_frame(ws) for _ in range(5)]
    assert [f["seq"] for f in seen] == [1, 2, 3, 4, 5]
    # The socket is gone; the run goes on. Come back on a new socket and resume.
    async with open_ws(live, token_of(guest)) as ws:
        await next_frame(ws)
        await send(ws, type="resume", run_id=ack["run_id"], after_seq=5)
        rest = await frames_until_end(ws, ack["run_id"])
    frames = seen + rest
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    text = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert text == "".join(words)
    assert frames[-1]["type"] == "done"
    services: Services = app.state.services
    message = await services.messages.list(await user_id_of(guest), ack["conversation_id"], limit=1)
    assert message.items[0].content == text and message.items[0].status == "complete"


async def test_closing_the_socket_does_not_stop_the_run(
    live: str, guest: httpx.AsyncClient, app: FastAPI, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    fake_anthropic.push(Script(text=["a", "b", "c"], first_token_delay=0.2))
    async with open_ws(live, token_of(guest)) as ws:
        await next_frame(ws)
        ack = await start_chat(ws, agent["id"], "Go on without me")
    services: Services = app.state.services
    await services.runner.wait(ack["run_id"])
    run = (await guest.get(f"/api/runs/{ack['run_id']}")).json()
    assert run["status"] == "completed"


async def test_cancel_frame_stops_the_provider_call(
    live: str, guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    fake_anthropic.push(Script(text=["x"] * 200, token_delay=0.05))
    async with open_ws(live, token_of(guest)) as ws:
        await next_frame(ws)
        ack = await start_chat(ws, agent["id"], "Talk forever")
        first = await next_frame(ws)
        assert first["type"] == "delta"
        call = fake_anthropic.calls("/v1/messages")[-1]
        await send(ws, type="cancel", run_id=ack["run_id"])
        assert await call.wait_disconnected(within=0.5), "provider call not stopped in 500 ms"
        frames = await frames_until_end(ws, ack["run_id"])
    assert frames[-1]["type"] == "done" and frames[-1]["status"] == "cancelled"
    assert sum(f["type"] in ("done", "error") for f in frames) == 1


async def test_duplicate_client_msg_id_acks_the_same_run(
    live: str, guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    async with open_ws(live, token_of(guest)) as ws:
        await next_frame(ws)
        ack = await start_chat(ws, agent["id"], "Once", client_msg_id="dup-1")
        await frames_until_end(ws, ack["run_id"])
        again = await start_chat(
            ws, agent["id"], "Once", client_msg_id="dup-1", conversation_id=ack["conversation_id"]
        )
        replay = await frames_until_end(ws, ack["run_id"])
    assert again["run_id"] == ack["run_id"] and again["duplicate"] is True
    assert replay[-1]["type"] == "done"
    assert len(fake_anthropic.calls("/v1/messages")) == 1


async def test_users_never_see_each_others_events(
    live: str, new_guest: GuestFactory, fake_anthropic: FakeAnthropic
) -> None:
    alice, bob = await new_guest(), await new_guest()
    agent = await make_agent(alice)
    fake_anthropic.push(Script(text=["secret", " words"], token_delay=0.02))
    async with open_ws(live, token_of(alice)) as a, open_ws(live, token_of(bob)) as b:
        await next_frame(a)
        await next_frame(b)
        ack = await start_chat(a, agent["id"], "Private")
        # Bob tries to listen in on Alice's run.
        await send(b, type="resume", run_id=ack["run_id"], after_seq=0)
        denied = await next_frame(b)
        assert (denied["type"], denied["code"]) == ("error", "not_found")
        await frames_until_end(a, ack["run_id"])
        await send(b, type="ping", nonce="b")
        assert await next_frame(b) == {"type": "pong", "nonce": "b"}  # nothing else arrived


async def test_several_tabs_of_one_user(live: str, guest: httpx.AsyncClient) -> None:
    agent = await make_agent(guest)
    token = token_of(guest)
    async with open_ws(live, token) as one, open_ws(live, token) as two:
        await next_frame(one)
        await next_frame(two)
        ack = await start_chat(one, agent["id"], "From tab one")
        await send(two, type="resume", run_id=ack["run_id"], after_seq=0)
        got_one, got_two = await asyncio.gather(
            frames_until_end(one, ack["run_id"]), frames_until_end(two, ack["run_id"])
        )
    assert got_one == got_two
