"""RetryingChatModel around the real providers, against the fakes: what is retried, how often,
how long it waits (recorded, not slept), and that nothing is retried once text went out."""

from __future__ import annotations

import email.utils

import pytest

from agentplatform.providers.anthropic import AnthropicProvider
from agentplatform.providers.base import (
    ChatModel,
    Finish,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderOverloaded,
    ProviderQuotaError,
    ProviderRateLimited,
    TextDelta,
)
from agentplatform.providers.openai_compat import OpenAICompatProvider
from agentplatform.providers.retry import RetryingChatModel, parse_retry_after
from tests.fakes import FakeAnthropic, FakeOpenAI, Script
from tests.unit.providers.support import Sleeps, ask, collect, collect_until_error, texts

REPLY = Script(text=["Hello", "!"])


def retrying(model: ChatModel, sleeps: Sleeps, attempts: int = 3) -> RetryingChatModel:
    return RetryingChatModel(model, attempts, base_delay=0.25, sleep=sleeps, jitter=lambda: 1.0)


async def test_429_then_success_is_retried_once_honouring_retry_after(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script.error(429, retry_after=2), REPLY)
    sleeps = Sleeps()
    events = await collect(retrying(anthropic.chat_model("claude-haiku-4-5"), sleeps), ask())
    assert texts(events) == ["Hello", "!"]
    assert events[-1] == Finish("stop")
    assert len(anthropic_fake.requests) == 2
    assert sleeps.delays == [2.0]


@pytest.mark.parametrize("status", [529, 500])
async def test_overload_is_retried_at_most_twice(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic, status: int
) -> None:
    anthropic_fake.push(*[Script.error(status)] * 4)
    sleeps = Sleeps()
    _, error = await collect_until_error(
        retrying(anthropic.chat_model("claude-haiku-4-5"), sleeps), ask()
    )
    assert isinstance(error, ProviderOverloaded)
    assert len(anthropic_fake.requests) == 3
    assert sleeps.delays == [0.25, 0.5]  # exponential (jitter pinned to its maximum)


async def test_500_then_success_on_openai(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script.error(500), Script.error(503), REPLY)
    sleeps = Sleeps()
    events = await collect(retrying(openai_provider.chat_model("gpt-4o"), sleeps), ask())
    assert texts(events) == ["Hello", "!"]
    assert len(openai_fake.requests) == 3


async def test_auth_error_is_not_retried(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script.error(401), REPLY)
    sleeps = Sleeps()
    _, error = await collect_until_error(
        retrying(anthropic.chat_model("claude-haiku-4-5"), sleeps), ask()
    )
    assert isinstance(error, ProviderAuthError)
    assert len(anthropic_fake.requests) == 1
    assert sleeps.delays == []


async def test_quota_is_not_retried(
    openai_provider: OpenAICompatProvider, openai_fake: FakeOpenAI
) -> None:
    openai_fake.push(Script.error(429, error_code="insufficient_quota"), REPLY)
    sleeps = Sleeps()
    _, error = await collect_until_error(
        retrying(openai_provider.chat_model("gpt-4o"), sleeps), ask()
    )
    assert isinstance(error, ProviderQuotaError)
    assert len(openai_fake.requests) == 1


@pytest.mark.parametrize("vendor", ["anthropic", "openai"])
async def test_drop_after_tokens_is_raised_after_them_and_not_retried(
    anthropic: AnthropicProvider,
    anthropic_fake: FakeAnthropic,
    openai_provider: OpenAICompatProvider,
    openai_fake: FakeOpenAI,
    vendor: str,
) -> None:
    model: ChatModel
    if vendor == "anthropic":
        fake: FakeAnthropic | FakeOpenAI = anthropic_fake
        model = anthropic.chat_model("claude-haiku-4-5")
    else:
        fake, model = openai_fake, openai_provider.chat_model("gpt-4o")
    fake.push(Script(text=["one", "two", "three"], disconnect_after=2), REPLY)
    sleeps = Sleeps()
    events, error = await collect_until_error(retrying(model, sleeps), ask())
    assert events == [TextDelta("one"), TextDelta("two")]
    assert isinstance(error, ProviderConnectionError)
    assert len(fake.requests) == 1
    assert sleeps.delays == []


async def test_overload_event_after_tokens_is_not_retried(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["partial"], stream_error="overloaded_error"), REPLY)
    events, error = await collect_until_error(
        retrying(anthropic.chat_model("claude-haiku-4-5"), Sleeps()), ask()
    )
    assert texts(events) == ["partial"]
    assert isinstance(error, ProviderOverloaded)
    assert len(anthropic_fake.requests) == 1


async def test_drop_before_the_first_token_is_retried(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    # message_start has gone out, but no event reached the caller yet.
    anthropic_fake.push(Script(text=["lost"], disconnect_after=0), REPLY)
    events = await collect(retrying(anthropic.chat_model("claude-haiku-4-5"), Sleeps()), ask())
    assert texts(events) == ["Hello", "!"]
    assert len(anthropic_fake.requests) == 2


async def test_retry_after_is_capped(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script.error(429, retry_after=600), REPLY)
    sleeps = Sleeps()
    model = RetryingChatModel(
        anthropic.chat_model("claude-haiku-4-5"), sleep=sleeps, max_retry_after=20.0
    )
    await collect(model, ask())
    assert sleeps.delays == [20.0]


async def test_closing_the_wrapper_closes_the_call(
    anthropic: AnthropicProvider, anthropic_fake: FakeAnthropic
) -> None:
    anthropic_fake.push(Script(text=["first", "second"], token_delay=30))
    stream = retrying(anthropic.chat_model("claude-haiku-4-5"), Sleeps()).stream(ask())
    assert await anext(stream) == TextDelta("first")
    await stream.aclose()  # type: ignore[attr-defined]
    request = await anthropic_fake.wait_for_request()
    assert await request.wait_disconnected(within=0.5)


def test_wrapper_keeps_ref_and_context(anthropic: AnthropicProvider) -> None:
    model = RetryingChatModel(anthropic.chat_model("claude-haiku-4-5"))
    assert model.ref == "anthropic:claude-haiku-4-5"
    assert model.context_tokens == 200_000
    assert isinstance(model, ChatModel)


def test_backoff_grows_with_jitter_and_a_cap(anthropic: AnthropicProvider) -> None:
    inner = anthropic.chat_model("claude-haiku-4-5")
    low = RetryingChatModel(inner, base_delay=1.0, max_delay=3.0, jitter=lambda: 0.0)
    high = RetryingChatModel(inner, base_delay=1.0, max_delay=3.0, jitter=lambda: 1.0)
    error = ProviderOverloaded("busy")
    assert [low.delay_for(n, error) for n in (1, 2, 3)] == [0.5, 1.0, 1.5]
    assert [high.delay_for(n, error) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]
    assert high.delay_for(1, ProviderRateLimited("slow", retry_after=0.1)) == 1.0
    with pytest.raises(ValueError):
        RetryingChatModel(inner, attempts=0)


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000.0) == 30.0
