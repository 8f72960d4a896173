"""The contract every model provider implements.

A ``ChatModel`` turns a ``ChatRequest`` into an async stream of ``ModelEvent``:

    TextDelta*  (ToolCallRequest*)  Usage?  Finish

- ``TextDelta``: a fragment of the reply, in order.
- ``ToolCallRequest``: the model asks for a tool (complete: id, name, parsed arguments).
- ``Usage``: tokens in/out, once, when known.
- ``Finish``: always last; ``reason`` is one of ``stop``, ``length``, ``tool_calls``,
  ``content_filter``, ``other``.

Failures raise ``ProviderError`` (below); the stream never yields an error event. Closing the
async iterator early (``aclose()``, task cancellation) must stop the underlying call promptly.
Providers do not retry on their own: the runtime's retry policy decides (see ``retry.py``).

    ProviderError                 code            retryable
    ├── ProviderAuthError         auth            no   (401/403, bad or missing key)
    ├── ProviderQuotaError        quota           no   (spend limit, insufficient credit)
    ├── ProviderBadRequest        bad_request     no   (400/404/422: unknown model, too long)
    ├── ProviderRateLimited       rate_limited    yes  (429)
    ├── ProviderOverloaded        overloaded      yes  (529, 5xx)
    ├── ProviderTimeout           timeout         yes  (connect/read timeout)
    └── ProviderConnectionError   connection      yes  (refused, reset, dropped mid-stream)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Role = Literal["user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call made by the assistant in an earlier turn (kept in history)."""

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of history. ``tool`` messages answer ``tool_call_id`` with ``content``."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: JSON-schema ``parameters`` of an object."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    system: str
    messages: tuple[ChatMessage, ...]
    temperature: float = 0.7
    max_tokens: int = 1024
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: Mapping[str, Any]
    kind: Literal["tool_call"] = "tool_call"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    kind: Literal["usage"] = "usage"


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason
    kind: Literal["finish"] = "finish"


ModelEvent = TextDelta | ToolCallRequest | Usage | Finish


@runtime_checkable
class ChatModel(Protocol):
    """One model of one provider, ready to stream."""

    @property
    def ref(self) -> str:
        """``provider:model``."""
        ...

    @property
    def context_tokens(self) -> int:
        """How many tokens of prompt plus reply the model accepts."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]: ...


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model as listed by ``GET /api/models``."""

    ref: str
    provider: str
    name: str
    label: str
    offline_demo: bool = False
    context_tokens: int = 8192


class Provider(Protocol):
    """A configured backend (anthropic, openai, local) that hands out ``ChatModel`` objects."""

    name: str

    def unavailable_reason(self) -> str | None:
        """``None`` when usable now, else why not (no key, no model file, missing extra)."""
        ...

    async def list_models(self) -> list[ModelInfo]: ...

    def chat_model(self, model: str) -> ChatModel:
        """The model named ``model`` (the part after ``provider:``)."""
        ...

    async def aclose(self) -> None: ...


class ProviderError(Exception):
    code: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ProviderAuthError(ProviderError):
    code = "auth"


class ProviderQuotaError(ProviderError):
    code = "quota"


class ProviderBadRequest(ProviderError):
    code = "bad_request"


class ProviderRateLimited(ProviderError):
    code = "rate_limited"
    retryable = True

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ProviderOverloaded(ProviderError):
    code = "overloaded"
    retryable = True


class ProviderTimeout(ProviderError):
    code = "timeout"
    retryable = True


class ProviderConnectionError(ProviderError):
    code = "connection"
    retryable = True


def error_for_status(status: int) -> type[ProviderError]:
    """The class an HTTP error status maps to, for every provider alike."""
    if status in (401, 403):
        return ProviderAuthError
    if status == 429:
        return ProviderRateLimited
    if status == 408:
        return ProviderTimeout
    if status >= 500:
        return ProviderOverloaded
    return ProviderBadRequest
