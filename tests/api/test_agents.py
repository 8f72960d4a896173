"""Agents: every validation rule, every status code, filters, search and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import GuestFactory

FIELDS = {
    "id", "name", "description", "tags", "color", "icon", "instructions", "model",
    "temperature", "max_tokens", "status", "tools", "max_steps", "total_runs", "successful_runs",
    "created_at", "updated_at",
}  # fmt: skip


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/agents", json={"name": "Agent", **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_returns_the_stored_agent(guest: httpx.AsyncClient) -> None:
    agent = await create(
        guest,
        name="  Research helper  ",
        description="Finds things.\nSecond line.",
        tags=[" Research ", "research", "AI"],
        color="#12abEF",
        icon="🔬",
        instructions="Be brief.",
        model="anthropic:claude-sonnet-4-5",
        temperature=0.2,
        max_tokens=2048,
    )
    assert set(agent) == FIELDS
    assert agent["name"] == "Research helper"
    assert agent["tags"] == ["research", "ai"]
    assert (agent["total_runs"], agent["successful_runs"], agent["status"]) == (0, 0, "active")
    assert agent["created_at"].endswith("Z") and agent["created_at"] == agent["updated_at"]
    fetched = await guest.get(f"/api/agents/{agent['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == agent


async def test_defaults(guest: httpx.AsyncClient) -> None:
    agent = await create(guest)
    assert agent["description"] == "" and agent["tags"] == [] and agent["instructions"] == ""
    assert agent["model"].count(":") >= 1
    assert 0 <= agent["temperature"] <= 2 and agent["max_tokens"] >= 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 81),
        ("name", "bad\x00name"),
        ("name", "tab\tname"),
        ("name", 42),
        ("name", None),
        ("description", "d" * 2001),
        ("description", "nul\x00"),
        ("tags", ["t"] * 0 + [f"t{i}" for i in range(17)]),
        ("tags", [""]),
        ("tags", ["   "]),
        ("tags", ["x" * 33]),
        ("tags", "not-a-list"),
        ("tags", [1]),
        ("color", "red"),
        ("color", "#12345"),
        ("color", "#1234567"),
        ("color", "#GGGGGG"),
        ("icon", ""),
        ("icon", "<script>"),
        ("icon", "Robot Face"),
        ("icon", "x" * 33),
        ("icon", "🤖" * 9),
        ("instructions", "i" * 20_001),
        ("model", "gpt-4o"),
        ("model", ":model"),
        ("model", "openai:"),
        ("model", "Open AI:gpt"),
        ("temperature", -0.1),
        ("temperature", 2.01),
        ("temperature", "hot"),
        ("max_tokens", 0),
        ("max_tokens", 64_001),
        ("max_tokens", 1.5),
        ("status", "deleted"),
        ("unknown_field", 1),
        ("user_id", "someone-else"),
    ],
)
async def test_create_validation(guest: httpx.AsyncClient, field: str, value: Any) -> None:
    body = {"name": "Valid", field: value}
    response = await guest.post("/api/agents", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert any(field in detail["loc"] for detail in error["details"]), error


async def test_limits_are_inclusive(guest: httpx.AsyncClient) -> None:
    agent = await create(
        guest,
        name="n" * 80,
        description="d" * 2000,
        tags=[f"tag-{i}" for i in range(16)] + ["TAG-0"],
        instructions="i" * 20_000,
        temperature=2,
        max_tokens=64_000,
        icon="book-open",
    )
    assert len(agent["tags"]) == 16
    zero = await create(guest, temperature=0, max_tokens=1, tags=["x" * 32], icon="👩‍💻")
    assert zero["temperature"] == 0 and zero["icon"] == "👩‍💻"


async def test_body_must_be_a_json_object(guest: httpx.AsyncClient) -> None:
    bad_json = await guest.post(
        "/api/agents", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "bad_request"
    for body in ([], "name", 3, None):
        response = await guest.post("/api/agents", json=body)
        assert response.status_code == 422, body


async def test_patch_changes_only_given_fields(guest: httpx.AsyncClient) -> None:
    agent = await create(guest, description="keep me", tags=["a"])
    response = await guest.patch(
        f"/api/agents/{agent['id']}", json={"name": " Renamed ", "tags": ["B", "c"]}
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "Renamed" and updated["tags"] == ["b", "c"]
    assert updated["description"] == "keep me"
    assert updated["updated_at"] > agent["updated_at"]
    assert updated["created_at"] == agent["created_at"]
    by_tag = (await guest.get("/api/agents", params={"tag": "a"})).json()["items"]
    assert agent["id"] not in [a["id"] for a in by_tag]


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"name": ""},
        {"color": "blue"},
        {"total_runs": 100},
        {"successful_runs": 1},
        {"id": "x"},
        {"created_at": "2020-01-01T00:00:00Z"},
    ],
)
async def test_patch_validation(guest: httpx.AsyncClient, body: dict[str, Any]) -> None:
    agent = await create(guest)
    response = await guest.patch(f"/api/agents/{agent['id']}", json=body)
    assert response.status_code == 422, response.text
    assert (await guest.get(f"/api/agents/{agent['id']}")).json() == agent


async def test_archive_and_filter_by_status(guest: httpx.AsyncClient) -> None:
    active = await create(guest, name="Active")
    archived = await create(guest, name="Old")
    response = await guest.patch(f"/api/agents/{archived['id']}", json={"status": "archived"})
    assert response.json()["status"] == "archived"
    only_active = (await guest.get("/api/agents", params={"status": "active"})).json()
    assert [a["id"] for a in only_active["items"]] == [active["id"]]
    only_archived = (await guest.get("/api/agents", params={"status": "archived"})).json()
    assert [a["id"] for a in only_archived["items"]] == [archived["id"]]
    assert (await guest.get("/api/agents", params={"status": "gone"})).status_code == 422


async def test_delete(guest: httpx.AsyncClient) -> None:
    agent = await create(guest)
    assert (await guest.delete(f"/api/agents/{agent['id']}")).status_code == 204
    assert (await guest.get(f"/api/agents/{agent['id']}")).status_code == 404
    assert (await guest.delete(f"/api/agents/{agent['id']}")).status_code == 404
    assert (await guest.get("/api/agents")).json()["items"] == []


async def test_missing_agent_is_404_with_envelope(guest: httpx.AsyncClient) -> None:
    for path in ("/api/agents/does-not-exist", "/api/agents/" + "z" * 500):
        response = await guest.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_list_is_newest_first_and_pages(guest: httpx.AsyncClient) -> None:
    ids = [(await create(guest, name=f"Agent {i}"))["id"] for i in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await guest.get("/api/agents", params=params)).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


async def test_list_filters_by_tag_and_text(guest: httpx.AsyncClient) -> None:
    a = await create(guest, name="Writer", tags=["writing", "EN"])
    b = await create(guest, name="Coder", description="writes Python", tags=["code"])
    c = await create(guest, name="100% sure_thing", tags=["code"])

    async def ids(**params: Any) -> list[str]:
        response = await guest.get("/api/agents", params=params)
        assert response.status_code == 200
        return [x["id"] for x in response.json()["items"]]

    assert await ids(tag="code") == [c["id"], b["id"]]
    assert await ids(tag=" EN ") == [a["id"]]
    assert await ids(q="writ") == [b["id"], a["id"]]
    assert await ids(q="WRITER") == [a["id"]]
    assert await ids(q="writ", tag="code") == [b["id"]]
    assert await ids(q="%") == [c["id"]]
    assert await ids(q="_") == [c["id"]]
    assert await ids(q="nothing like it") == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"q": "x" * 201}, {"cursor": "c" * 600}],
)
async def test_list_parameter_validation(guest: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await guest.get("/api/agents", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_garbage_cursor_is_harmless(guest: httpx.AsyncClient) -> None:
    await create(guest)
    response = await guest.get("/api/agents", params={"cursor": "'; DROP TABLE agents; --"})
    assert response.status_code == 200


async def test_list_shows_only_own_agents(new_guest: GuestFactory) -> None:
    alice, bob = await new_guest(), await new_guest()
    mine = await create(alice, name="Alice's")
    await create(bob, name="Bob's")
    items = (await alice.get("/api/agents")).json()["items"]
    assert [a["id"] for a in items] == [mine["id"]]


async def test_every_agent_route_needs_a_session(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("POST", "/api/agents"),
        ("GET", "/api/agents"),
        ("GET", "/api/agents/x"),
        ("PATCH", "/api/agents/x"),
        ("DELETE", "/api/agents/x"),
    ]:
        response = await client.request(method, path, json={"name": "x"})
        assert response.status_code == 401, (method, path)
