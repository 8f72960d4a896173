"""The configured providers, and how a ``provider:model`` reference becomes a ``ChatModel``.

``build_registry(settings)`` registers the built-ins (anthropic, openai, local) the same way
any other provider would be registered: by name in a mapping. ``local`` is imported lazily so
a missing ``llama-cpp-python`` never breaks start-up; it then shows as unavailable with an
install hint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from agentplatform.config import Settings
from agentplatform.providers import catalog
from agentplatform.providers.anthropic import AnthropicProvider
from agentplatform.providers.base import ChatModel, ModelInfo, Provider, ProviderError
from agentplatform.providers.openai_compat import OpenAICompatProvider
from agentplatform.providers.retry import RetryingChatModel, Sleep

log = logging.getLogger(__name__)

PREFERENCE = ("anthropic", "openai", "local")
LOCAL_INSTALL_HINT = "pip install 'agentplatform[local]'"


class UnknownModel(Exception):
    """A model reference no configured provider can serve."""


class UnavailableProvider:
    """A provider that cannot run here at all (e.g. its optional extra is not installed)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self._reason = reason

    def unavailable_reason(self) -> str | None:
        return self._reason

    async def list_models(self) -> list[ModelInfo]:
        return []

    def chat_model(self, model: str) -> ChatModel:
        raise UnknownModel(f"{self.name}:{model} is unavailable: {self._reason}")

    async def aclose(self) -> None:
        return None


class ProviderRegistry:
    """Named providers; hands out retrying ``ChatModel``s for ``provider:model`` references."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        default_model: str | None,
        *,
        retry_attempts: int = 3,
        retry_base_delay: float = 0.25,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._providers = dict(providers)
        self._default_model = default_model or None
        self._retry_attempts = retry_attempts
        self._retry_base_delay = retry_base_delay
        self._sleep = sleep
        self._listed: dict[str, list[ModelInfo]] = {}

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self._providers

    def resolve(self, ref: str) -> ChatModel:
        """The model for ``provider:model``, wrapped in the retry policy."""
        provider, model = self._usable_provider(ref)
        try:
            inner = provider.chat_model(model)
        except ProviderError as exc:
            raise UnknownModel(f"unknown model {ref!r}: {exc.message}") from exc
        return RetryingChatModel(
            inner, self._retry_attempts, self._retry_base_delay, sleep=self._sleep
        )

    def is_usable(self, ref: str) -> bool:
        try:
            self._usable_provider(ref)
        except UnknownModel:
            return False
        return True

    def default_ref(self) -> str | None:
        """``default_model`` if set, else the first usable of anthropic → openai → local.

        Providers whose models are only known by listing (a custom OpenAI-compatible server,
        the local GGUF) use the last ``list_models()`` answer, so call that once at start-up.
        """
        if self._default_model is not None:
            return self._default_model
        for name in (*PREFERENCE, *(n for n in self._providers if n not in PREFERENCE)):
            provider = self._providers.get(name)
            if provider is None or provider.unavailable_reason() is not None:
                continue
            model = self._first_model(name, provider)
            if model is not None:
                return f"{name}:{model}"
        return None

    def _first_model(self, name: str, provider: Provider) -> str | None:
        if isinstance(provider, AnthropicProvider):
            return catalog.ANTHROPIC_MODELS[0].name
        if isinstance(provider, OpenAICompatProvider) and provider.is_default_server:
            return catalog.OPENAI_MODELS[0].name
        listed = self._listed.get(name)
        if listed:
            return listed[0].name
        fallback = getattr(provider, "model_name", None)
        return fallback if isinstance(fallback, str) else None

    async def list_models(self) -> list[ModelInfo]:
        """Models of every usable provider, in preference order; a failing provider is skipped."""
        usable = [(n, p) for n, p in self._providers.items() if p.unavailable_reason() is None]
        results = await asyncio.gather(
            *(p.list_models() for _, p in usable), return_exceptions=True
        )
        models: list[ModelInfo] = []
        for (name, _), result in zip(usable, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.warning("listing %s models failed: %s", name, result)
                continue
            self._listed[name] = result
            models.extend(result)
        return models

    async def aclose(self) -> None:
        for name, provider in self._providers.items():
            try:
                await provider.aclose()
            except Exception:
                log.exception("closing provider %s failed", name)

    def _usable_provider(self, ref: str) -> tuple[Provider, str]:
        name, sep, model = ref.partition(":")
        if not sep or not name or not model:
            raise UnknownModel(
                f"model reference {ref!r} must look like provider:model; {self._configured()}"
            )
        provider = self._providers.get(name)
        if provider is None:
            raise UnknownModel(f"unknown provider {name!r} in {ref!r}; {self._configured()}")
        reason = provider.unavailable_reason()
        if reason is not None:
            raise UnknownModel(f"provider {name!r} is unavailable: {reason}; {self._configured()}")
        return provider, model

    def _configured(self) -> str:
        usable = [n for n, p in self._providers.items() if p.unavailable_reason() is None]
        if not usable:
            return "no provider is configured (set ANTHROPIC_API_KEY or OPENAI_API_KEY)"
        return "configured providers: " + ", ".join(usable)


def build_registry(settings: Settings) -> ProviderRegistry:
    """The built-in providers from settings; nothing connects until a model is used."""
    timeout = settings.provider_timeout_seconds
    anthropic_key = settings.anthropic_api_key
    openai_key = settings.openai_api_key
    providers: dict[str, Provider] = {
        "anthropic": AnthropicProvider(
            anthropic_key.get_secret_value() if anthropic_key else None,
            settings.anthropic_base_url,
            timeout,
        ),
        "openai": OpenAICompatProvider(
            openai_key.get_secret_value() if openai_key else None,
            settings.openai_base_url,
            timeout,
        ),
        "local": _local_provider(settings),
    }
    return ProviderRegistry(providers, settings.default_model)


def _local_provider(settings: Settings) -> Provider:
    try:  # imported here so that a broken or missing llama.cpp install never breaks start-up
        from agentplatform.providers.local import LocalProvider
    except ImportError as exc:
        log.info("local provider unavailable: %s", exc)
        return UnavailableProvider("local", f"not installed ({LOCAL_INSTALL_HINT})")
    return LocalProvider(settings.local_model_path, settings.model_cache_dir)
