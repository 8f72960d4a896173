"""OpenAICompatProvider (real SDK) against the wire-level fake Chat Completions server."""

from __future__ import annotations

import asyncio

import pytest

from agentplatform.providers.base import (
    Finish,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderConnectionError,
    ProviderError,
    ProviderOverloaded,
    ProviderQuotaError,
    ProviderRateLimited,
    TextDelta,
    ToolCallRequest,
    Usage,
)
from agentplatform.providers.openai_compat import (
    OpenAICompatProvider,
    fallback_models,
    request_params,
)
from tests.fakes import FakeOpenAI, FakeToolCall, Script
from tests.unit.providers.support import (
    OPENAI_KEY,
    WEATHER,
    ask,
    collect,
    collect_until_error,
    history_request,
    texts,
)

MODEL = "gpt-4o-mini"


async def test_streams_text_then_usage_then_finish(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script(text=["Hi", " there", "!"], input_tokens=9, output_tokens=3))
    events = await collect(openai_provider.chat_model(MODEL), ask())
    assert events == [
        TextDelta("Hi"),
        TextDelta(" there"),
        TextDelta("!"),
        Usage(input_tokens=9, output_tokens=3),
        Finish("stop"),
    ]
    body = openai_fake.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert openai_fake.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"


async def test_two_parallel_tool_calls_assembled_across_chunks(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    paris = {"city": "Paris", "units": "celsius", "days": [1, 2]}
    openai_fake.push(
        Script(
            tool_calls=[
                FakeToolCall("get_weather", paris, id="call_a", pieces=7),
                FakeToolCall("get_weather", {"city": "Oslo"}, id="call_b", pieces=3),
            ]
        )
    )
    events = await collect(openai_provider.chat_model(MODEL), ask(tools=(WEATHER,)))
    assert events[:2] == [
        ToolCallRequest("call_a", "get_weather", paris),
        ToolCallRequest("call_b", "get_weather", {"city": "Oslo"}),
    ]
    assert isinstance(events[2], Usage)
    assert events[3] == Finish("tool_calls")


@pytest.mark.parametrize(
    ("finish_reason", "finish"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
    ],
)
async def test_finish_reasons(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI, finish_reason: str, finish: str
) -> None:
    openai_fake.push(Script(text=["x"], finish_reason=finish_reason))
    events = await collect(openai_provider.chat_model(MODEL), ask())
    assert events[-1] == Finish(finish)  # type: ignore[arg-type]


async def test_history_maps_to_openai_messages(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script(text=["ok"]))
    await collect(openai_provider.chat_model(MODEL), history_request())
    body = openai_fake.requests[0].body
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 300  # a custom server: the classic name
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    call = {"type": "function", "function": {"name": "get_weather"}}
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    **call,
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    **call,
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "ERROR: station offline"},
        {"role": "assistant", "content": "Paris is 18C; Oslo is unknown."},
        {"role": "user", "content": "Thanks"},
    ]


@pytest.mark.parametrize(
    ("script", "error_class", "status"),
    [
        (Script.error(400, error_message="context_length_exceeded"), ProviderBadRequest, 400),
        (Script.error(404), ProviderBadRequest, 404),
        (Script.error(403), ProviderAuthError, 403),
        (Script.error(429, retry_after=3), ProviderRateLimited, 429),
        (Script.error(429, error_code="insufficient_quota"), ProviderQuotaError, 429),
        (Script.error(500), ProviderOverloaded, 500),
        (Script.error(503), ProviderOverloaded, 503),
    ],
)
async def test_http_errors_map_to_provider_errors(
    openai_provider: OpenAICompatProvider,
    openai_fake: FakeOpenAI,
    script: Script,
    error_class: type[ProviderError],
    status: int,
) -> None:
    openai_fake.push(script)
    events, error = await collect_until_error(openai_provider.chat_model(MODEL), ask())
    assert events == []
    assert type(error) is error_class
    assert error.status == status
    assert OPENAI_KEY not in str(error)
    if script.retry_after is not None:
        assert isinstance(error, ProviderRateLimited)
        assert error.retry_after == 3


async def test_wrong_key_is_an_auth_error_without_the_key(openai_fake: FakeOpenAI) -> None:
    wrong = "sk-proj-WRONG-key-0123456789abcdef"
    provider = OpenAICompatProvider(wrong, openai_fake.url, timeout=5.0)
    try:
        _, error = await collect_until_error(provider.chat_model(MODEL), ask())
    finally:
        await provider.aclose()
    assert isinstance(error, ProviderAuthError)
    assert "Incorrect API key" in error.message
    assert wrong not in str(error)
    assert wrong[-4:] not in str(error)  # not even the tail the server echoes


async def test_error_object_mid_stream(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script(text=["Hel", "lo"], stream_error="server_error"))
    events, error = await collect_until_error(openai_provider.chat_model(MODEL), ask())
    assert texts(events) == ["Hel", "lo"]
    assert isinstance(error, ProviderOverloaded)


async def test_dropped_connection_mid_stream(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script(text=["a", "b", "c"], disconnect_after=2))
    events, error = await collect_until_error(openai_provider.chat_model(MODEL), ask())
    assert texts(events) == ["a", "b"]
    assert isinstance(error, ProviderConnectionError)


async def test_cancel_while_waiting_for_first_token_closes_the_response(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script(text=["never"], first_token_delay=30))
    stream = openai_provider.chat_model(MODEL).stream(ask())
    first = asyncio.ensure_future(anext(stream))
    request = await openai_fake.wait_for_request()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await stream.aclose()  # type: ignore[attr-defined]
    assert await request.wait_disconnected(within=0.5)


async def test_aclose_after_first_token_closes_the_response(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script(text=["first", "second"], token_delay=30))
    stream = openai_provider.chat_model(MODEL).stream(ask())
    assert await anext(stream) == TextDelta("first")
    await stream.aclose()  # type: ignore[attr-defined]
    request = await openai_fake.wait_for_request()
    assert await request.wait_disconnected(within=0.5)


async def test_base_url_without_key_uses_a_placeholder(openai_fake: FakeOpenAI) -> None:
    openai_fake.api_key = None  # like Ollama: no key needed
    provider = OpenAICompatProvider(None, openai_fake.url, timeout=5.0)
    assert provider.unavailable_reason() is None
    openai_fake.push(Script(text=["ok"]))
    try:
        assert texts(await collect(provider.chat_model("llama3.2"), ask())) == ["ok"]
    finally:
        await provider.aclose()
    assert openai_fake.requests[0].headers["authorization"] == "Bearer not-needed"


def test_unavailable_without_key_or_base_url() -> None:
    provider = OpenAICompatProvider(None, None, timeout=5.0)
    reason = provider.unavailable_reason()
    assert reason is not None and "OPENAI_API_KEY" in reason
    assert OpenAICompatProvider(OPENAI_KEY, None, timeout=5.0).unavailable_reason() is None


async def test_list_models_asks_the_server_once(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.models = ["llama3.2", "qwen2.5:7b", "gpt-4o"]
    first = await openai_provider.list_models()
    second = await openai_provider.list_models()
    assert first == second
    assert [m.ref for m in first] == ["openai:gpt-4o", "openai:llama3.2", "openai:qwen2.5:7b"]
    assert first[0].label == "GPT-4o" and first[0].context_tokens == 128_000
    assert first[1].label == "llama3.2"
    assert len(openai_fake.calls("/models")) == 1


async def test_list_models_failure_at_a_custom_server_is_empty(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.models_status = 500
    assert await openai_provider.list_models() == []
    assert len(openai_fake.calls("/models")) == 1


def test_fallback_models_only_for_the_default_server() -> None:
    assert [m.ref for m in fallback_models(None)] == ["openai:gpt-4o-mini", "openai:gpt-4o"]
    assert fallback_models("https://api.openai.com/v1") == fallback_models(None)
    assert fallback_models("http://localhost:11434/v1") == []


def test_default_server_uses_max_completion_tokens() -> None:
    assert OpenAICompatProvider(OPENAI_KEY, None, timeout=5.0).is_default_server
    params = request_params(ask(), modern=True)
    assert params["max_completion_tokens"] == 1024
    assert "max_tokens" not in params


def test_context_size_of_a_dated_model_id() -> None:
    provider = OpenAICompatProvider(OPENAI_KEY, None, timeout=5.0)
    model = provider.chat_model("gpt-4.1-mini-2025-04-14")
    assert model.ref == "openai:gpt-4.1-mini-2025-04-14"
    assert model.context_tokens == 1_047_576
