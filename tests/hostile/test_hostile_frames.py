"""The hostile payloads as WebSocket frames on ``/ws``, through a real client against ``live``.

Each frame goes on a fresh connection and must get an ``error`` frame (after which the socket
still answers a ``ping``) or a close with 1007 (invalid data), 1008 (policy) or 1009 (too
big) — never a crash (1011), never silence. Frames that are not UTF-8 go as binary frames,
which a text protocol may also close with 1003 (unsupported data). Afterwards the server is
still healthy: ``/health`` answers 200, and a normal chat streams a reply over a new socket.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import FAKE_REPLY
from tests.hostile.conftest import (
    REQUEST_TIMEOUT,
    Owner,
    server_log,
    services_of,
    snapshot,
)
from tests.hostile.payloads import (
    NUL_VALUE,
    OVERSIZED,
    PAYLOADS,
    Payload,
    duplicate_attacks,
    field_attacks,
)

ACCEPTED_CLOSES = {1007, 1008, 1009}
BINARY_CLOSES = ACCEPTED_CLOSES | {1003}
TOO_BIG = 1009


def chat_frame(owner: Owner) -> dict[str, Any]:
    return {
        "type": "chat",
        "agent_id": owner.agent_id,
        "conversation_id": owner.conversation_id,
        "content": "hi",
        "client_msg_id": "c1",
    }


def whole_frames() -> list[Payload]:
    """The body payloads that are UTF-8 JSON attempts (content types mean nothing here)."""
    return [p for p in PAYLOADS if p.content_type == "application/json" and p.is_text]


def open_socket(live: str, token: str) -> Any:
    return connect(
        f"ws://{live}/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=REQUEST_TIMEOUT,
        max_size=None,
    )


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(REQUEST_TIMEOUT):
        frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def verdict(live: str, token: str, payload: Payload) -> str:
    """What the server did with ``payload``: ``error``, ``close <code>``, or a complaint."""
    async with open_socket(live, token) as ws:
        assert (await next_frame(ws))["type"] == "welcome"
        try:
            await ws.send(payload.body.decode() if payload.is_text else payload.body)
            reply = await next_frame(ws)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            return f"close {code}"
        if reply.get("type") != "error":
            return f"unexpected frame {reply}"
        await ws.send(json.dumps({"type": "ping", "nonce": "alive"}))
        pong = await next_frame(ws)
        return "error" if pong == {"type": "pong", "nonce": "alive"} else f"then {pong}"


def acceptable(payload: Payload, outcome: str, max_frame: int) -> bool:
    if len(payload.body) > max_frame:  # never read at all
        return outcome == f"close {TOO_BIG}"
    closes = ACCEPTED_CLOSES if payload.is_text else BINARY_CLOSES
    return outcome == "error" or outcome in {f"close {code}" for code in closes}


async def assert_handled(app: FastAPI, live: str, owner: Owner, payloads: list[Payload]) -> None:
    """Each payload on its own socket: an error frame or a clean close, no server error."""
    max_frame = services_of(app).settings.ws_max_frame_bytes
    before = await snapshot(app, owner.user_id)
    wrong: list[str] = []
    for payload in payloads:
        with server_log() as log:
            outcome = await verdict(live, owner.token, payload)
        if not acceptable(payload, outcome, max_frame) or log.records:
            wrong.append(f"{payload.id}: {outcome}\n{log.text()}")
    assert not wrong, "\n".join(wrong)
    assert await snapshot(app, owner.user_id) == before


async def test_hostile_frames_get_an_error_or_a_clean_close(
    app: FastAPI, live: str, owner: Owner
) -> None:
    await assert_handled(app, live, owner, whole_frames())


async def test_hostile_values_in_a_chat_frame_get_an_error(
    app: FastAPI, live: str, owner: Owner
) -> None:
    await assert_handled(app, live, owner, field_attacks(chat_frame(owner)))


async def test_nul_in_a_chat_frame_gets_an_error(
    app: FastAPI, live: str, owner: Owner, request: pytest.FixtureRequest
) -> None:
    await assert_handled(app, live, owner, field_attacks(chat_frame(owner), NUL_VALUE))


async def test_duplicate_keys_in_a_frame_get_an_error(
    app: FastAPI, live: str, owner: Owner
) -> None:
    await assert_handled(app, live, owner, duplicate_attacks(chat_frame(owner)))


async def test_binary_frames_get_an_error_or_a_clean_close(
    app: FastAPI, live: str, owner: Owner
) -> None:
    binary = [
        Payload("binary-garbage", b"\xff\x00\x01"),
        Payload("binary-invalid-utf8", b'{"name": "\xff\xfe"}'),
        Payload("binary-ping", b"\xff" + json.dumps({"type": "ping"}).encode()),
    ]
    assert not any(p.is_text for p in binary)
    await assert_handled(app, live, owner, binary)


async def test_the_server_is_healthy_afterwards(app: FastAPI, live: str, owner: Owner) -> None:
    storm = [*whole_frames()[:5], Payload("binary", b"\xff")]
    storm += [p for p in PAYLOADS if p.id in OVERSIZED]
    for payload in storm:
        await verdict(live, owner.token, payload)
    async with httpx.AsyncClient(base_url=f"http://{live}", timeout=REQUEST_TIMEOUT) as http:
        assert (await http.get("/health")).status_code == 200
    async with open_socket(live, owner.token) as ws:
        assert (await next_frame(ws))["type"] == "welcome"
        await ws.send(json.dumps({**chat_frame(owner), "client_msg_id": "after-the-storm"}))
        ack = await next_frame(ws)
        assert ack["type"] == "ack", ack
        text = ""
        while True:
            frame = await next_frame(ws)
            if frame["type"] == "delta":
                text += frame["text"]
            if frame["type"] in ("done", "error"):
                break
    assert frame["type"] == "done" and frame["status"] == "completed", frame
    assert text == "".join(FAKE_REPLY)
