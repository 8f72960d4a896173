"""ProviderRegistry rules (resolve, usability, default, listing, closing) and build_registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentplatform.config import Settings
from agentplatform.providers.anthropic import AnthropicProvider
from agentplatform.providers.base import (
    ChatModel,
    ChatRequest,
    Finish,
    ModelEvent,
    ModelInfo,
    Provider,
    ProviderBadRequest,
)
from agentplatform.providers.openai_compat import OpenAICompatProvider
from agentplatform.providers.registry import (
    LOCAL_INSTALL_HINT,
    ProviderRegistry,
    UnavailableProvider,
    UnknownModel,
    build_registry,
)
from agentplatform.providers.retry import RetryingChatModel
from tests.fakes import FakeAnthropic, FakeOpenAI, Script
from tests.unit.providers.support import ANTHROPIC_KEY, OPENAI_KEY, Sleeps, ask, collect, texts


class StubModel:
    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.context_tokens = 4096

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        yield Finish("stop")


class StubProvider:
    """A provider with fixed models; ``fail_listing`` makes ``list_models`` raise."""

    def __init__(
        self,
        name: str,
        models: tuple[str, ...] = ("m1",),
        reason: str | None = None,
        fail_listing: bool = False,
    ) -> None:
        self.name = name
        self.models = models
        self.reason = reason
        self.fail_listing = fail_listing
        self.closed = False

    def unavailable_reason(self) -> str | None:
        return self.reason

    async def list_models(self) -> list[ModelInfo]:
        if self.fail_listing:
            raise RuntimeError("listing exploded")
        return [ModelInfo(f"{self.name}:{m}", self.name, m, m.upper()) for m in self.models]

    def chat_model(self, model: str) -> ChatModel:
        if model not in self.models:
            raise ProviderBadRequest(f"no model {model!r} here", status=404)
        return StubModel(f"{self.name}:{model}")

    async def aclose(self) -> None:
        self.closed = True
        if self.fail_listing:
            raise RuntimeError("closing exploded")


def registry(*providers: Provider, default: str | None = None) -> ProviderRegistry:
    return ProviderRegistry({p.name: p for p in providers}, default)


def test_resolve_wraps_the_model_in_the_retry_policy() -> None:
    model = registry(StubProvider("stub")).resolve("stub:m1")
    assert isinstance(model, RetryingChatModel)
    assert model.ref == "stub:m1"
    assert model.context_tokens == 4096


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("nope:m1", ["unknown provider 'nope'", "configured providers: stub"]),
        ("m1", ["provider:model", "configured providers: stub"]),
        ("stub:", ["provider:model"]),
        ("off:m1", ["'off' is unavailable: no key", "configured providers: stub"]),
        ("stub:m9", ["unknown model 'stub:m9'", "no model 'm9' here"]),
    ],
)
def test_unknown_models(ref: str, words: list[str]) -> None:
    reg = registry(StubProvider("stub"), StubProvider("off", reason="no key"))
    with pytest.raises(UnknownModel) as caught:
        reg.resolve(ref)
    for word in words:
        assert word in str(caught.value)


def test_no_usable_provider_says_what_to_set() -> None:
    reg = registry(AnthropicProvider(None, None, 5.0), OpenAICompatProvider(None, None, 5.0))
    with pytest.raises(UnknownModel, match="no provider is configured"):
        reg.resolve("anthropic:claude-haiku-4-5")


def test_is_usable() -> None:
    reg = registry(StubProvider("stub"), StubProvider("off", reason="no key"))
    assert reg.is_usable("stub:m1")
    assert reg.is_usable("stub:anything")  # model names are checked when resolving
    assert not reg.is_usable("off:m1")
    assert not reg.is_usable("nope:m1")
    assert not reg.is_usable("garbage")


def test_default_model_setting_wins() -> None:
    reg = registry(AnthropicProvider(ANTHROPIC_KEY, None, 5.0), default="openai:gpt-4o")
    assert reg.default_ref() == "openai:gpt-4o"


def test_default_prefers_anthropic_then_openai_then_local() -> None:
    anthropic = AnthropicProvider(ANTHROPIC_KEY, None, 5.0)
    no_anthropic = AnthropicProvider(None, None, 5.0)
    openai = OpenAICompatProvider(OPENAI_KEY, None, 5.0)
    no_openai = OpenAICompatProvider(None, None, 5.0)
    local = StubProvider("local", ("gemma-3-270m",))
    assert registry(local, openai, anthropic).default_ref() == "anthropic:claude-sonnet-4-6"
    assert registry(local, openai, no_anthropic).default_ref() == "openai:gpt-4o-mini"
    no_local = StubProvider("local", reason="no model file")
    assert registry(no_local, no_openai, no_anthropic).default_ref() is None


async def test_default_for_listed_providers_uses_the_last_listing() -> None:
    local = StubProvider("local", ("gemma-3-270m", "other"))
    reg = registry(AnthropicProvider(None, None, 5.0), local)
    assert reg.default_ref() is None  # not listed yet, and no model_name to go by
    await reg.list_models()
    assert reg.default_ref() == "local:gemma-3-270m"


def test_default_for_local_uses_its_model_name_before_listing() -> None:
    local = StubProvider("local")
    local.model_name = "gemma-3-270m"  # type: ignore[attr-defined]
    assert registry(local).default_ref() == "local:gemma-3-270m"


async def test_default_for_a_custom_openai_server_needs_a_listing(openai_fake: FakeOpenAI) -> None:
    openai_fake.models = ["llama3.2"]
    openai = OpenAICompatProvider(OPENAI_KEY, openai_fake.url, 5.0)
    reg = registry(AnthropicProvider(None, None, 5.0), openai)
    try:
        assert reg.default_ref() is None
        assert [m.ref for m in await reg.list_models()] == ["openai:llama3.2"]
        assert reg.default_ref() == "openai:llama3.2"
    finally:
        await reg.aclose()


async def test_list_models_only_usable_providers_and_skips_failures() -> None:
    reg = registry(
        StubProvider("a", ("x", "y")),
        StubProvider("off", ("z",), reason="no key"),
        StubProvider("broken", fail_listing=True),
    )
    assert [m.ref for m in await reg.list_models()] == ["a:x", "a:y"]


async def test_aclose_closes_every_provider_even_if_one_fails() -> None:
    first, broken, last = StubProvider("a"), StubProvider("b", fail_listing=True), StubProvider("c")
    await registry(first, broken, last).aclose()
    assert first.closed and broken.closed and last.closed


async def test_resolved_model_retries_against_the_fake(anthropic_fake: FakeAnthropic) -> None:
    provider = AnthropicProvider(ANTHROPIC_KEY, anthropic_fake.url, 5.0)
    sleeps = Sleeps()
    reg = ProviderRegistry({"anthropic": provider}, None, sleep=sleeps)
    anthropic_fake.push(Script.error(429, retry_after=1), Script(text=["ok"]))
    try:
        events = await collect(reg.resolve("anthropic:claude-haiku-4-5"), ask())
    finally:
        await reg.aclose()
    assert texts(events) == ["ok"]
    assert len(anthropic_fake.requests) == 2
    assert sleeps.delays == [1.0]


async def test_build_registry_from_settings(tmp_path: Path, anthropic_fake: FakeAnthropic) -> None:
    settings = Settings(
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        ANTHROPIC_BASE_URL=anthropic_fake.url,
        OPENAI_API_KEY=None,
        OPENAI_BASE_URL=None,
        model_cache_dir=tmp_path,
        local_model_path=tmp_path / "missing.gguf",
    )
    reg = build_registry(settings)
    try:
        assert list(reg.providers) == ["anthropic", "openai", "local"]
        assert reg.is_usable("anthropic:claude-haiku-4-5")
        assert not reg.is_usable("openai:gpt-4o")
        assert not reg.is_usable("local:missing")
        assert reg.default_ref() == "anthropic:claude-sonnet-4-6"
        listed = await reg.list_models()
        assert {m.provider for m in listed} == {"anthropic"}
        anthropic_fake.push(Script(text=["hi"]))
        assert texts(await collect(reg.resolve("anthropic:claude-haiku-4-5"), ask())) == ["hi"]
    finally:
        await reg.aclose()


async def test_unavailable_provider_carries_the_install_hint() -> None:
    local = UnavailableProvider("local", f"not installed ({LOCAL_INSTALL_HINT})")
    reg = registry(local)
    with pytest.raises(UnknownModel, match=r"agentplatform\[local\]"):
        reg.resolve("local:gemma-3-270m")
    assert await local.list_models() == []
    await reg.aclose()
