"""Fixtures for the provider tests: one fake server per vendor for the session, reset per test,
and real SDK-based providers pointed at them (closed after each test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from agentplatform.providers.anthropic import AnthropicProvider
from agentplatform.providers.openai_compat import OpenAICompatProvider
from tests.fakes import FakeAnthropic, FakeOpenAI
from tests.unit.providers.support import ANTHROPIC_KEY, OPENAI_KEY


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def anthropic_fake(anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    anthropic_server.reset()
    anthropic_server.api_key = ANTHROPIC_KEY
    yield anthropic_server
    anthropic_server.reset()


@pytest.fixture
def openai_fake(openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    openai_server.reset()
    openai_server.api_key = OPENAI_KEY
    yield openai_server
    openai_server.reset()


@pytest.fixture
async def anthropic(anthropic_fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(ANTHROPIC_KEY, anthropic_fake.url, timeout=5.0)
    yield provider
    await provider.aclose()


@pytest.fixture
async def openai_provider(openai_fake: FakeOpenAI) -> AsyncIterator[OpenAICompatProvider]:
    provider = OpenAICompatProvider(OPENAI_KEY, openai_fake.url, timeout=5.0)
    yield provider
    await provider.aclose()
