"""Static per-model data: labels and context sizes of the models we know by name.

Providers consult this when the vendor API does not say (Anthropic's catalog is static, an
OpenAI-compatible ``/models`` answer carries no context size). Unknown names fall back to a
per-provider default.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentplatform.providers.base import ModelInfo

DEFAULT_CONTEXT_TOKENS = 8192
LOCAL_DEFAULT_MODEL = "gemma-3-270m"


@dataclass(frozen=True, slots=True)
class KnownModel:
    name: str
    label: str
    context_tokens: int


# The SDK (anthropic 2.13) flags claude-sonnet-4-5 and claude-opus-4-5 as deprecated and no
# longer knows claude-opus-4-1, so the catalog offers their successors; any name still resolves.
ANTHROPIC_MODELS: tuple[KnownModel, ...] = (
    KnownModel("claude-sonnet-4-6", "Claude Sonnet 4.6", 200_000),
    KnownModel("claude-haiku-4-5", "Claude Haiku 4.5", 200_000),
    KnownModel("claude-opus-4-8", "Claude Opus 4.8", 200_000),
    KnownModel("claude-sonnet-4-5", "Claude Sonnet 4.5 (deprecated)", 200_000),
)
ANTHROPIC_DEFAULT_CONTEXT = 200_000

# Listed when api.openai.com cannot be asked; also the source of context sizes by name.
OPENAI_MODELS: tuple[KnownModel, ...] = (
    KnownModel("gpt-4o-mini", "GPT-4o mini", 128_000),
    KnownModel("gpt-4o", "GPT-4o", 128_000),
)
_OPENAI_EXTRA: tuple[KnownModel, ...] = (
    KnownModel("gpt-4.1", "GPT-4.1", 1_047_576),
    KnownModel("gpt-4.1-mini", "GPT-4.1 mini", 1_047_576),
    KnownModel("gpt-4.1-nano", "GPT-4.1 nano", 1_047_576),
    KnownModel("o3", "o3", 200_000),
    KnownModel("o4-mini", "o4-mini", 200_000),
    KnownModel("gpt-4-turbo", "GPT-4 Turbo", 128_000),
    KnownModel("gpt-3.5-turbo", "GPT-3.5 Turbo", 16_385),
)


def _find(models: tuple[KnownModel, ...], name: str) -> KnownModel | None:
    """Exact name first, else the longest known name that prefixes ``name`` (dated ids)."""
    best: KnownModel | None = None
    for model in models:
        if model.name == name:
            return model
        if name.startswith(model.name + "-") and (best is None or len(model.name) > len(best.name)):
            best = model
    return best


def anthropic_model(name: str) -> KnownModel:
    """``name`` with what the catalog knows of it (or of the family it is a dated id of)."""
    known = _find(ANTHROPIC_MODELS, name)
    if known is None:
        return KnownModel(name, name, ANTHROPIC_DEFAULT_CONTEXT)
    return KnownModel(name, known.label, known.context_tokens)


def openai_model(name: str) -> KnownModel:
    known = _find(OPENAI_MODELS, name) or _find(_OPENAI_EXTRA, name)
    context = known.context_tokens if known else DEFAULT_CONTEXT_TOKENS
    label = known.label if known and known.name == name else name
    return KnownModel(name, label, context)


def to_info(provider: str, model: KnownModel) -> ModelInfo:
    return ModelInfo(
        ref=f"{provider}:{model.name}",
        provider=provider,
        name=model.name,
        label=model.label,
        context_tokens=model.context_tokens,
    )
