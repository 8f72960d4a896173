"""``GET /metrics``: the Prometheus text format, route templates, run and token counters,
open sockets, the pool gauge, rate-limit counts, and the optional scrape token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import text
from websockets.asyncio.client import connect

from agentplatform.api.deps import Services
from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.observability.metrics import Metrics
from agentplatform.observability.middleware import TelemetryMiddleware
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import Script
from tests.support.chat import make_agent, next_frame, parse_sse, token_of, user_id_of

Labels = frozenset[tuple[str, str]]
FAMILIES = {
    "agentplatform_http_requests",
    "agentplatform_http_request_duration_seconds",
    "agentplatform_websocket_connections",
    "agentplatform_runs",
    "agentplatform_run_duration_seconds",
    "agentplatform_run_time_to_first_token_seconds",
    "agentplatform_model_tokens",
    "agentplatform_rate_limited",
    "agentplatform_db_pool_checked_out",
    "agentplatform_db_pool_size",
}


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of a scrape, keyed by sample name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, Labels], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def services(app: FastAPI) -> Services:
    s: Services = app.state.services
    return s


async def test_the_scrape_is_prometheus_text_with_every_family(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names >= FAMILIES
    assert "process_cpu_seconds" in names or "python_info" in names


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    guest: httpx.AsyncClient,
) -> None:
    agent = await make_agent(guest)
    before = await scrape(guest)
    for _ in range(2):
        assert (await guest.get(f"/api/agents/{agent['id']}")).status_code == 200
    assert (await guest.get("/api/agents/no-such-agent")).status_code == 404
    assert (await guest.get(f"/no/such/{agent['id']}")).status_code == 404
    assert (await guest.put(f"/api/agents/{agent['id']}")).status_code == 405
    after = await scrape(guest)

    route = {"method": "GET", "route": "/api/agents/{agent_id}"}
    name = "agentplatform_http_requests_total"
    assert (
        value(after, name, **route, status="200") - value(before, name, **route, status="200") == 2
    )
    assert (
        value(after, name, **route, status="404") - value(before, name, **route, status="404") == 1
    )
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, name, **unmatched) - value(before, name, **unmatched) == 1
    put = {"method": "PUT", "route": "/api/agents/{agent_id}", "status": "405"}
    assert value(after, name, **put) - value(before, name, **put) == 1
    latency = "agentplatform_http_request_duration_seconds_count"
    assert (
        value(after, latency, **route, status="200") - value(before, latency, **route, status="200")
        == 2
    )
    assert not any(agent["id"] in dict(labels).get("route", "") for _, labels in after)


async def test_a_run_moves_the_run_token_and_latency_metrics(
    guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic
) -> None:
    agent = await make_agent(guest)
    before = await scrape(guest)
    fake_anthropic.push(Script(text=["a", "b", "c"], input_tokens=20, output_tokens=7))
    response = await guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Hi"})
    assert parse_sse(response.text)[-1][0] == "done"
    fake_anthropic.push(Script.error(401))
    response = await guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Hi"})
    assert parse_sse(response.text)[-1][0] == "error"
    after = await scrape(guest)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    runs = "agentplatform_runs_total"
    assert moved(runs, status="completed", provider="anthropic") == 1
    assert moved(runs, status="failed", provider="anthropic") == 1
    tokens = "agentplatform_model_tokens_total"
    assert moved(tokens, provider="anthropic", direction="input") == 20
    assert moved(tokens, provider="anthropic", direction="output") == 7
    ttft = "agentplatform_run_time_to_first_token_seconds_count"
    assert moved(ttft, provider="anthropic") == 1  # the failed run produced no text
    duration = "agentplatform_run_duration_seconds_count"
    assert moved(duration, status="completed", provider="anthropic") == 1
    assert moved(duration, status="failed", provider="anthropic") == 1


async def test_no_label_value_names_a_user_agent_run_or_conversation(
    guest: httpx.AsyncClient,
) -> None:
    agent = await make_agent(guest)
    response = await guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Hi"})
    ack = parse_sse(response.text)[0][1]
    await guest.get(f"/api/runs/{ack['run_id']}")
    await guest.get(f"/api/conversations/{ack['conversation_id']}/messages")
    await guest.get(f"/api/auth/validate/{token_of(guest)}")
    text = (await guest.get("/metrics")).text
    ids = [await user_id_of(guest), agent["id"], ack["run_id"], ack["conversation_id"]]
    for secret in [*ids, token_of(guest)]:
        assert secret not in text
    label_values = {v for family in text_string_to_metric_families(text) for s in family.samples
                    for v in s.labels.values()}  # fmt: skip
    assert "/api/auth/validate/{token}" in label_values


async def test_open_websockets_are_a_gauge(live: str, guest: httpx.AsyncClient) -> None:
    gauge = "agentplatform_websocket_connections"
    base = value(await scrape(guest), gauge)
    headers = {"Authorization": f"Bearer {token_of(guest)}"}
    async with connect(f"ws://{live}/ws", additional_headers=headers, open_timeout=5) as ws:
        assert (await next_frame(ws))["type"] == "welcome"
        assert ws.response is not None and ws.response.headers.get("x-request-id")
        assert value(await scrape(guest), gauge) == base + 1
    for _ in range(100):  # the server notices the close a moment later
        if value(await scrape(guest), gauge) == base:
            break
        await asyncio.sleep(0.02)
    assert value(await scrape(guest), gauge) == base


async def test_pool_use_is_read_at_scrape_time(app: FastAPI, client: httpx.AsyncClient) -> None:
    name = "agentplatform_db_pool_checked_out"
    assert value(await scrape(client), "agentplatform_db_pool_size") >= 1
    resting = value(await scrape(client), name)
    async with services(app).db.transaction() as session:
        await session.execute(
            text("SELECT 1")
        )  # a session takes a connection when it first needs one
        held = value(parse(services(app).metrics.render().decode()), name)
    assert held == resting + 1


async def test_rate_limit_refusals_are_counted_by_budget(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    metrics: Metrics = app.state.metrics
    assert metrics is services(app).metrics
    before = await scrape(client)
    metrics.rate_limited("chat_user")
    metrics.rate_limited("chat_user")
    metrics.rate_limited("Not A Budget {id}")  # never a label value from outside
    after = await scrape(client)
    name = "agentplatform_rate_limited_total"
    assert value(after, name, budget="chat_user") - value(before, name, budget="chat_user") == 2
    assert value(after, name, budget="other") - value(before, name, budget="other") == 1


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    token = SecretStr("scrape-token-0123456789")
    application = create_app(settings.model_copy(update={"metrics_token": token}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_the_scrape_token_is_required_when_configured(
    guarded: httpx.AsyncClient,
) -> None:
    missing = await guarded.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = await guarded.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    basic = await guarded.get("/metrics", headers={"Authorization": "Basic c2NyYXBlOng="})
    assert basic.status_code == 401
    good = await guarded.get(
        "/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"}
    )
    assert good.status_code == 200
    assert "scrape-token-0123456789" not in good.text
    assert "agentplatform_http_requests_total" in good.text


def test_a_short_scrape_token_is_refused_and_an_empty_one_means_open() -> None:
    with pytest.raises(ValueError, match="metrics_token"):
        Settings(metrics_token="short")
    assert Settings(metrics_token="").metrics_token is None


def test_every_app_has_its_own_registry() -> None:
    first, second = create_app(Settings()), create_app(Settings())
    assert first.state.metrics.registry is not second.state.metrics.registry


def _inline_app() -> tuple[FastAPI, Metrics]:
    """A tiny app: a router included under a prefix, and a route that crashes."""
    metrics = Metrics()
    inner = APIRouter(prefix="/items")

    @inner.get("/{item_id}")
    async def read_item(item_id: str) -> dict[str, Any]:
        return {"id": item_id}

    @inner.get("/{item_id}/boom")
    async def boom(item_id: str) -> None:
        raise RuntimeError("boom")

    application = FastAPI()
    application.include_router(inner, prefix="/v1")
    application.add_middleware(TelemetryMiddleware, metrics=metrics)
    return application, metrics


async def test_templates_keep_include_prefixes_and_crashes_count_as_500() -> None:
    application, metrics = _inline_app()
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        assert (await c.get("/v1/items/42")).status_code == 200
        assert (await c.get("/v1/items/42/boom")).status_code == 500
    samples = parse(metrics.render().decode())
    name = "agentplatform_http_requests_total"
    assert value(samples, name, method="GET", route="/v1/items/{item_id}", status="200") == 1
    assert value(samples, name, method="GET", route="/v1/items/{item_id}/boom", status="500") == 1
