"""Helpers for chat tests: parse SSE bodies, make agents, read frames from a WebSocket."""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

# Fields of an agent created straight through the repository (no API defaults there).
AGENT_FIELDS: dict[str, Any] = {
    "name": "Direct",
    "color": "#000000",
    "icon": "robot",
    "model": "anthropic:claude-haiku-4-5",
    "temperature": 0.5,
    "max_tokens": 100,
    "tags": [],
}


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a complete ``text/event-stream`` body (comments skipped)."""
    events: list[tuple[str, dict[str, Any]]] = []
    for block in body.split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


async def make_agent(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": "Chat agent", "model": "anthropic:claude-sonnet-4-6", **fields}
    response = await client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def user_id_of(client: httpx.AsyncClient) -> str:
    user_id: str = (await client.get("/api/auth/session")).json()["user"]["id"]
    return user_id


def token_of(client: httpx.AsyncClient) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def frames_until_end(ws: ClientConnection, run_id: str) -> list[dict[str, Any]]:
    """Frames of ``run_id`` up to and including its terminal ``done``/``error`` frame."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = await next_frame(ws)
        if frame.get("run_id") != run_id:
            continue
        frames.append(frame)
        if frame["type"] in ("done", "error") and "seq" in frame:
            return frames
