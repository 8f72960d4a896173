"""AnthropicProvider (real SDK) against the wire-level fake Messages API."""

from __future__ import annotations

import asyncio
import socket

import pytest

from agentplatform.providers.anthropic import AnthropicProvider
from agentplatform.providers.base import (
    Finish,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderQuotaError,
    ProviderRateLimited,
    ProviderTimeout,
    TextDelta,
    ToolCallRequest,
    Usage,
)
from tests.fakes import FakeAnthropic, FakeToolCall, Script
from tests.unit.providers.support import (
    ANTHROPIC_KEY,
    WEATHER,
    ask,
    collect,
    collect_until_error,
    history_request,
    texts,
)

MODEL = "claude-haiku-4-5"


async def test_streams_text_then_usage_then_finish(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["Hel", "lo", " world"], input_tokens=21, output_tokens=7))
    events = await collect(anthropic.chat_model(MODEL), ask())
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(" world"),
        Usage(input_tokens=21, output_tokens=7),
        Finish("stop"),
    ]
    (request,) = anthropic_fake.requests
    assert request.body["model"] == MODEL
    assert request.body["stream"] is True


async def test_tool_use_input_json_is_joined_across_deltas(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    args = {"city": "Paris", "units": "celsius", "days": [1, 2, 3]}
    anthropic_fake.push(
        Script(
            text=["Let me check."],
            tool_calls=[
                FakeToolCall("get_weather", args, id="toolu_01", pieces=6),
                FakeToolCall("get_weather", {"city": "Oslo"}, id="toolu_02", pieces=2),
            ],
        )
    )
    events = await collect(anthropic.chat_model(MODEL), ask(tools=(WEATHER,)))
    assert events[0] == TextDelta("Let me check.")
    assert events[1:3] == [
        ToolCallRequest("toolu_01", "get_weather", args),
        ToolCallRequest("toolu_02", "get_weather", {"city": "Oslo"}),
    ]
    assert isinstance(events[3], Usage)
    assert events[4] == Finish("tool_calls")


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "other"),
    ],
)
async def test_stop_reasons_map_to_finish(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic, stop_reason: str, finish: str
) -> None:
    anthropic_fake.push(Script(text=["x"], finish_reason=stop_reason))
    events = await collect(anthropic.chat_model(MODEL), ask())
    assert events[-1] == Finish(finish)  # type: ignore[arg-type]


async def test_history_maps_to_messages_system_and_tools(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["ok"]))
    await collect(anthropic.chat_model(MODEL), history_request())
    body = anthropic_fake.requests[0].body
    assert body["system"] == "You are terse."
    assert body["max_tokens"] == 300
    assert "temperature" not in body  # the SDK no longer has the parameter
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": "station offline",
                    "is_error": True,
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Paris is 18C; Oslo is unknown."}],
        },
        {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
    ]


async def test_no_system_param_when_system_is_empty(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["ok"]))
    await collect(anthropic.chat_model(MODEL), ask(system=""))
    assert "system" not in anthropic_fake.requests[0].body
    assert "tools" not in anthropic_fake.requests[0].body


@pytest.mark.parametrize(
    ("script", "error_class", "status"),
    [
        (Script.error(401), ProviderAuthError, 401),
        (Script.error(403), ProviderAuthError, 403),
        (Script.error(400, error_message="max_tokens: too large"), ProviderBadRequest, 400),
        (Script.error(404, error_message="model: claude-nope"), ProviderBadRequest, 404),
        (
            Script.error(400, error_message="Your credit balance is too low to access the API."),
            ProviderQuotaError,
            400,
        ),
        (Script.error(402), ProviderQuotaError, 402),
        (Script.error(429, error_code="enforced_spend_limit_reached"), ProviderQuotaError, 429),
        (Script.error(429, retry_after=7), ProviderRateLimited, 429),
        (Script.error(500), ProviderOverloaded, 500),
        (Script.error(529), ProviderOverloaded, 529),
        (Script.error(504), ProviderOverloaded, 504),
    ],
)
async def test_http_errors_map_to_provider_errors(
    anthropic: AnthropicProvider,
    anthropic_fake: FakeAnthropic,
    script: Script,
    error_class: type[ProviderError],
    status: int,
) -> None:
    anthropic_fake.push(script)
    events, error = await collect_until_error(anthropic.chat_model(MODEL), ask())
    assert events == []
    assert type(error) is error_class
    assert error.status == status
    assert "request-id req_" in error.message
    assert ANTHROPIC_KEY not in str(error) and ANTHROPIC_KEY not in repr(error)
    if script.retry_after is not None:
        assert isinstance(error, ProviderRateLimited)
        assert error.retry_after == 7


async def test_wrong_key_is_an_auth_error_without_the_key(anthropic_fake: FakeAnthropic) -> None:
    wrong = "sk-ant-api03-WRONG-key-9876543210"
    provider = AnthropicProvider(wrong, anthropic_fake.url, timeout=5.0)
    try:
        _, error = await collect_until_error(provider.chat_model(MODEL), ask())
    finally:
        await provider.aclose()
    assert isinstance(error, ProviderAuthError)
    assert wrong not in str(error)
    assert anthropic_fake.requests[0].headers["authorization"] == f"Bearer {wrong}"


@pytest.mark.parametrize(
    ("error_type", "error_class"),
    [
        ("overloaded_error", ProviderOverloaded),
        ("api_error", ProviderOverloaded),
        ("rate_limit_error", ProviderRateLimited),
        ("invalid_request_error", ProviderBadRequest),
    ],
)
async def test_error_event_mid_stream(
    anthropic: AnthropicProvider,
    anthropic_fake: FakeAnthropic,
    error_type: str,
    error_class: type[ProviderError],
) -> None:
    anthropic_fake.push(Script(text=["Hel", "lo"], stream_error=error_type))
    events, error = await collect_until_error(anthropic.chat_model(MODEL), ask())
    assert texts(events) == ["Hel", "lo"]
    assert type(error) is error_class


async def test_dropped_connection_mid_stream(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["a", "b", "c", "d"], disconnect_after=2))
    events, error = await collect_until_error(anthropic.chat_model(MODEL), ask())
    assert texts(events) == ["a", "b"]
    assert isinstance(error, ProviderConnectionError)


async def test_read_timeout_is_provider_timeout(anthropic_fake: FakeAnthropic) -> None:
    provider = AnthropicProvider(ANTHROPIC_KEY, anthropic_fake.url, timeout=0.2)
    anthropic_fake.push(Script(text=["late"], first_token_delay=30))
    try:
        _, error = await collect_until_error(provider.chat_model(MODEL), ask())
    finally:
        await provider.aclose()
    assert isinstance(error, ProviderTimeout)
    assert await anthropic_fake.requests[0].wait_disconnected(within=2.0)


async def test_refused_connection_is_provider_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = AnthropicProvider(ANTHROPIC_KEY, f"http://127.0.0.1:{port}", timeout=2.0)
    try:
        _, error = await collect_until_error(provider.chat_model(MODEL), ask())
    finally:
        await provider.aclose()
    assert isinstance(error, ProviderConnectionError)
    assert ANTHROPIC_KEY not in str(error)


async def test_cancel_while_waiting_for_first_token_closes_the_response(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["never"], first_token_delay=30))
    stream = anthropic.chat_model(MODEL).stream(ask())
    first = asyncio.ensure_future(anext(stream))
    request = await anthropic_fake.wait_for_request()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await stream.aclose()  # type: ignore[attr-defined]
    assert await request.wait_disconnected(within=0.5)


async def test_aclose_after_first_token_closes_the_response(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["first", "second"], token_delay=30))
    stream = anthropic.chat_model(MODEL).stream(ask())
    assert await anext(stream) == TextDelta("first")
    await stream.aclose()  # type: ignore[attr-defined]
    request = await anthropic_fake.wait_for_request()
    assert await request.wait_disconnected(within=0.5)


async def test_unavailable_without_key_and_no_call_made(anthropic_fake: FakeAnthropic) -> None:
    provider = AnthropicProvider(None, anthropic_fake.url, timeout=5.0)
    assert provider.unavailable_reason() == "ANTHROPIC_API_KEY is not set"
    with pytest.raises(ProviderAuthError):
        await collect(provider.chat_model(MODEL), ask())
    await provider.aclose()
    assert anthropic_fake.requests == []


async def test_list_models_is_static(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    models = await anthropic.list_models()
    refs = [m.ref for m in models]
    assert "anthropic:claude-haiku-4-5" in refs
    assert all(m.provider == "anthropic" and m.context_tokens == 200_000 for m in models)
    assert all(m.label for m in models)
    assert anthropic_fake.requests == []
    assert anthropic.unavailable_reason() is None


def test_chat_model_ref_and_context() -> None:
    provider = AnthropicProvider(ANTHROPIC_KEY, None, timeout=5.0)
    model = provider.chat_model("claude-haiku-4-5-20251001")
    assert model.ref == "anthropic:claude-haiku-4-5-20251001"
    assert model.context_tokens == 200_000
