"""Conversations and messages: create, list, rename, delete, page by sequence number."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentplatform.api.deps import Services


async def setup(
    guest: httpx.AsyncClient, app: FastAPI, messages: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    agent = (await guest.post("/api/agents", json={"name": "Chatty"})).json()
    response = await guest.post(
        "/api/conversations", json={"agent_id": agent["id"], "title": "First"}
    )
    assert response.status_code == 201, response.text
    conversation = response.json()
    if messages:
        user_id = (await guest.get("/api/auth/session")).json()["user"]["id"]
        services: Services = app.state.services
        turns = [
            ("user" if i % 2 == 0 else "assistant", f"message {i + 1}") for i in range(messages)
        ]
        await services.messages.append_many(user_id, conversation["id"], turns)
    return agent, conversation


async def test_create_and_read(guest: httpx.AsyncClient, app: FastAPI) -> None:
    agent, conversation = await setup(guest, app)
    assert conversation["agent_id"] == agent["id"]
    assert conversation["title"] == "First" and conversation["message_count"] == 0
    fetched = await guest.get(f"/api/conversations/{conversation['id']}")
    assert fetched.status_code == 200 and fetched.json() == conversation


@pytest.mark.parametrize(
    "body",
    [{}, {"agent_id": "missing"}, {"agent_id": "x", "title": "t" * 201}, {"agent_id": "x", "z": 1}],
)
async def test_create_validation(guest: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await guest.post("/api/conversations", json=body)
    assert response.status_code in {404, 422}
    assert "error" in response.json()


async def test_create_for_unknown_agent_is_404(guest: httpx.AsyncClient) -> None:
    response = await guest.post("/api/conversations", json={"agent_id": "nope"})
    assert response.status_code == 404


async def test_list_by_agent_most_recent_first(guest: httpx.AsyncClient, app: FastAPI) -> None:
    agent, first = await setup(guest, app)
    other_agent, other = await setup(guest, app)
    second = (await guest.post("/api/conversations", json={"agent_id": agent["id"]})).json()
    listed = (await guest.get("/api/conversations", params={"agent_id": agent["id"]})).json()
    assert [c["id"] for c in listed["items"]] == [second["id"], first["id"]]
    everything = (await guest.get("/api/conversations")).json()["items"]
    assert {c["id"] for c in everything} == {first["id"], second["id"], other["id"]}
    # Renaming makes it the most recently active.
    await guest.patch(f"/api/conversations/{first['id']}", json={"title": "Bumped"})
    listed = (await guest.get("/api/conversations", params={"agent_id": agent["id"]})).json()
    assert [c["id"] for c in listed["items"]] == [first["id"], second["id"]]
    assert other_agent["id"] != agent["id"]


async def test_list_pages_with_cursor(guest: httpx.AsyncClient, app: FastAPI) -> None:
    agent, first = await setup(guest, app)
    ids = [first["id"]]
    for _ in range(4):
        created = await guest.post("/api/conversations", json={"agent_id": agent["id"]})
        ids.append(created.json()["id"])
    seen: list[str] = []
    params: dict[str, Any] = {"agent_id": agent["id"], "limit": 2}
    while True:
        page = (await guest.get("/api/conversations", params=params)).json()
        seen += [c["id"] for c in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == list(reversed(ids))
    bad = await guest.get("/api/conversations", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"


async def test_rename(guest: httpx.AsyncClient, app: FastAPI) -> None:
    _, conversation = await setup(guest, app)
    path = f"/api/conversations/{conversation['id']}"
    response = await guest.patch(path, json={"title": "  Trip planning  "})
    assert response.status_code == 200
    assert response.json()["title"] == "Trip planning"
    for body in ({"title": ""}, {"title": "   "}, {"title": None}, {}, {"title": "a\nb"}):
        bad = await guest.patch(path, json=body)
        assert bad.status_code == 422, body
    assert (await guest.get(path)).json()["title"] == "Trip planning"


async def test_delete_removes_messages(guest: httpx.AsyncClient, app: FastAPI) -> None:
    _, conversation = await setup(guest, app, messages=3)
    path = f"/api/conversations/{conversation['id']}"
    assert (await guest.delete(path)).status_code == 204
    assert (await guest.get(path)).status_code == 404
    assert (await guest.get(f"{path}/messages")).status_code == 404
    assert (await guest.delete(path)).status_code == 404


async def test_deleting_the_agent_deletes_its_conversations(
    guest: httpx.AsyncClient, app: FastAPI
) -> None:
    agent, conversation = await setup(guest, app, messages=2)
    assert (await guest.delete(f"/api/agents/{agent['id']}")).status_code == 204
    assert (await guest.get(f"/api/conversations/{conversation['id']}")).status_code == 404


async def test_messages_latest_page_then_older(guest: httpx.AsyncClient, app: FastAPI) -> None:
    _, conversation = await setup(guest, app, messages=120)
    path = f"/api/conversations/{conversation['id']}/messages"
    latest = (await guest.get(path, params={"limit": 50})).json()
    assert [m["seq"] for m in latest["items"]] == list(range(71, 121))
    assert latest["items"][-1]["content"] == "message 120"
    assert latest["next_cursor"] == "71"
    older = (await guest.get(path, params={"limit": 50, "before": 71})).json()
    assert [m["seq"] for m in older["items"]] == list(range(21, 71))
    oldest = (await guest.get(path, params={"limit": 50, "before": 21})).json()
    assert [m["seq"] for m in oldest["items"]] == list(range(1, 21))
    assert oldest["next_cursor"] is None
    message = oldest["items"][0]
    assert set(message) == {
        "id",
        "conversation_id",
        "parts",
        "run_id",
        "seq",
        "role",
        "content",
        "status",
        "created_at",
    }
    assert (message["role"], message["status"]) == ("user", "complete")


async def test_messages_forward_paging(guest: httpx.AsyncClient, app: FastAPI) -> None:
    _, conversation = await setup(guest, app, messages=7)
    path = f"/api/conversations/{conversation['id']}/messages"
    seen: list[int] = []
    after = 0
    while True:
        page = (await guest.get(path, params={"limit": 3, "after": after})).json()
        seen += [m["seq"] for m in page["items"]]
        if page["next_cursor"] is None:
            break
        after = int(page["next_cursor"])
    assert seen == list(range(1, 8))
    count = (await guest.get(f"/api/conversations/{conversation['id']}")).json()
    assert count["message_count"] == 7


@pytest.mark.parametrize(
    "params",
    [
        {"before": 5, "after": 1},
        {"before": -1},
        {"after": "x"},
        {"after": 2**63},
        {"limit": 0},
        {"limit": 1000},
    ],
)
async def test_message_paging_validation(
    guest: httpx.AsyncClient, app: FastAPI, params: dict[str, Any]
) -> None:
    _, conversation = await setup(guest, app)
    response = await guest.get(f"/api/conversations/{conversation['id']}/messages", params=params)
    assert response.status_code in {400, 422}
    assert "error" in response.json()


async def test_messages_are_one_row_each(guest: httpx.AsyncClient, app: FastAPI) -> None:
    """Appending a message inserts one row and leaves earlier rows untouched."""
    _, conversation = await setup(guest, app, messages=2)
    path = f"/api/conversations/{conversation['id']}/messages"
    before = (await guest.get(path)).json()["items"]
    user_id = (await guest.get("/api/auth/session")).json()["user"]["id"]
    services: Services = app.state.services
    await services.messages.append(user_id, conversation["id"], role="user", content="third")
    after = (await guest.get(path)).json()["items"]
    assert after[:2] == before
    assert after[2]["seq"] == 3 and after[2]["content"] == "third"
