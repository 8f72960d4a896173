"""Structured logs: one JSON line per request and per run, request ids, hashed users, nothing
secret; readable lines on a terminal; ``configure_logging`` owns the root handler."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from agentplatform.api.deps import SESSION_COOKIE
from agentplatform.config import Settings
from agentplatform.observability.logging import (
    REDACTED,
    JsonFormatter,
    RequestContext,
    configure_logging,
    hash_user_id,
    secret_values,
)
from agentplatform.observability.metrics import Metrics
from agentplatform.observability.middleware import TelemetryMiddleware
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import Script
from tests.support.chat import make_agent, next_frame, parse_sse, token_of, user_id_of

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Iterator[Lines]:
    """Every line our loggers write during the test, as parsed JSON."""
    caplog.set_level(logging.DEBUG, logger="agentplatform")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContext())
    logger = logging.getLogger("agentplatform")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


def by_event(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == event]


async def test_one_json_line_per_request_with_its_fields(
    guest: httpx.AsyncClient, log_lines: Lines
) -> None:
    agent = await make_agent(guest)
    response = await guest.get(f"/api/agents/{agent['id']}", headers={"X-Request-ID": "req-42.a"})
    assert response.headers["x-request-id"] == "req-42.a"
    [line] = [x for x in by_event(log_lines(), "http_request") if x["request_id"] == "req-42.a"]
    assert line["level"] == "info" and line["logger"] == "agentplatform.access"
    assert line["method"] == "GET" and line["route"] == "/api/agents/{agent_id}"
    assert line["status"] == 200 and line["duration_ms"] >= 0
    assert line["client_ip"] == "127.0.0.1"
    user_id = await user_id_of(guest)
    assert (
        line["user"] == hashlib.sha256(user_id.encode()).hexdigest()[:16] == hash_user_id(user_id)
    )
    assert line["ts"].endswith("Z") and line["msg"] == "GET /api/agents/{agent_id} 200"


@pytest.mark.parametrize("sent", ["", "has space", "x" * 200, "<script>", "a/b", "-lead"])
async def test_an_odd_request_id_is_replaced(
    client: httpx.AsyncClient, log_lines: Lines, sent: str
) -> None:
    response = await client.get("/api/models", headers={"X-Request-ID": sent})
    fresh = response.headers["x-request-id"]
    assert fresh != sent and len(fresh) == 32
    assert [x["request_id"] for x in by_event(log_lines(), "http_request")] == [fresh]


async def test_users_are_hashed_and_no_token_cookie_or_body_is_logged(
    client: httpx.AsyncClient, guest: httpx.AsyncClient, log_lines: Lines
) -> None:
    signed_in = await client.post("/api/auth/guest")
    cookie = signed_in.cookies[SESSION_COOKIE]
    await client.get("/api/auth/session")  # by cookie
    await client.get(f"/api/auth/validate/{cookie}")
    agent = await make_agent(guest, instructions="body-canary-instructions")
    await guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "body-canary-message"})
    await guest.get("/api/agents", headers={"Authorization": "Bearer not-a-real-token-xyz"})
    text = "\n".join(json.dumps(line) for line in log_lines())
    assert by_event(log_lines(), "http_request") and by_event(log_lines(), "run_finished")
    forbidden = [
        token_of(guest),
        cookie,
        await user_id_of(guest),
        signed_in.json()["user"]["id"],
        "not-a-real-token-xyz",
        "body-canary-instructions",
        "body-canary-message",
    ]
    for value in forbidden:
        assert value not in text
    assert hash_user_id(await user_id_of(guest)) in text


async def test_a_finished_run_writes_one_line(
    guest: httpx.AsyncClient, fake_anthropic: FakeAnthropic, log_lines: Lines
) -> None:
    agent = await make_agent(guest)
    fake_anthropic.push(Script(text=["x", "y"], input_tokens=9, output_tokens=2))
    events = parse_sse(
        (await guest.post(f"/api/agents/{agent['id']}/chat", json={"content": "Hi"})).text
    )
    run_id = events[0][1]["run_id"]
    [line] = [x for x in by_event(log_lines(), "run_finished") if x["run_id"] == run_id]
    assert line["logger"] == "agentplatform.runs" and line["status"] == "completed"
    assert line["provider"] == "anthropic" and line["model"].startswith("anthropic:")
    assert (line["input_tokens"], line["output_tokens"]) == (9, 2)
    assert line["duration_ms"] >= line["ttft_ms"] >= 0
    assert line["error_code"] is None
    chat_line = [x for x in by_event(log_lines(), "http_request") if x["route"].endswith("/chat")]
    assert line["request_id"] == chat_line[-1]["request_id"]  # the run carries its request's id


async def test_a_websocket_connection_writes_one_line_when_it_closes(
    live: str, guest: httpx.AsyncClient, log_lines: Lines
) -> None:
    headers = {"Authorization": f"Bearer {token_of(guest)}", "X-Request-ID": "ws-req-1"}
    async with connect(f"ws://{live}/ws", additional_headers=headers, open_timeout=5) as ws:
        assert (await next_frame(ws))["type"] == "welcome"
    for _ in range(100):
        lines = [x for x in by_event(log_lines(), "websocket") if x["request_id"] == "ws-req-1"]
        if lines:
            break
        await asyncio.sleep(0.02)
    [line] = lines
    assert line["route"] == "/ws" and line["status"] == 101 and line["method"] == "WS"
    assert line["user"] == hash_user_id(await user_id_of(guest))


async def test_probes_and_scrapes_log_quietly(client: httpx.AsyncClient, log_lines: Lines) -> None:
    await client.get("/health")
    await client.get("/metrics")
    levels = {x["route"]: x["level"] for x in by_event(log_lines(), "http_request")}
    assert levels == {"/health": "debug", "/metrics": "debug"}


async def test_lines_logged_while_serving_carry_the_request_id(log_lines: Lines) -> None:
    application = FastAPI()

    @application.get("/work")
    async def work() -> dict[str, str]:
        logging.getLogger("agentplatform.test").warning("doing work")
        return {}

    application.add_middleware(TelemetryMiddleware, metrics=Metrics())
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await c.get("/work", headers={"X-Request-ID": "inner-1"})
    [line] = [x for x in log_lines() if x["msg"] == "doing work"]
    assert line["request_id"] == "inner-1"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Puts back what ``configure_logging`` changes: root handler and level, uvicorn loggers."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access"]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(list(x.handlers), x.level, x.propagate, x.disabled) for x in loggers]
    try:
        yield
    finally:
        for logger, (handlers, level, propagate, disabled) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restore_logging")
def test_json_off_a_terminal_and_readable_on_one() -> None:
    piped = io.StringIO()
    configure_logging("info", stream=piped)
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    line = json.loads(piped.getvalue().splitlines()[-1])
    assert line["logger"] == "uvicorn.error" and line["msg"] == "Application startup complete."

    terminal = _Terminal()
    configure_logging("info", stream=terminal)  # replaces the first handler, not adds one
    logging.getLogger("agentplatform.test").info("hello %s", "you", extra={"fields": {"n": 1}})
    assert terminal.getvalue().rstrip().endswith("agentplatform.test  hello you  n=1")
    assert "hello" not in piped.getvalue()


@pytest.mark.usefixtures("restore_logging")
def test_the_handler_blanks_configured_secrets_even_in_tracebacks() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out, secrets=["canary-secret-value", "info"])
    log = logging.getLogger("agentplatform.test")
    log.warning("key is canary-secret-value")
    try:
        raise RuntimeError("canary-secret-value leaked")
    except RuntimeError:
        log.exception("failed")
    text = out.getvalue()
    assert "canary-secret-value" not in text and text.count(REDACTED) >= 3
    assert '"level": "warning"' in text  # too short to be a secret: "info" stays


def test_secret_values_are_every_secret_setting_and_url_password() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://app:pa%24%24word@db:5432/app",
        redis_url="redis://:redis-pass@redis:6379/0",
        metrics_token="metrics-token-0123456789",
        ANTHROPIC_API_KEY="sk-ant-xyz-1234",
        OPENAI_API_KEY="openai-key-5678",
    )
    found = set(secret_values(settings))
    expected = {"pa%24%24word", "pa$$word", "redis-pass", "metrics-token-0123456789"}
    assert found >= expected | {"sk-ant-xyz-1234", "openai-key-5678"}
