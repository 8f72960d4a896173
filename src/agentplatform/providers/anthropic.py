"""Anthropic's Messages API (streaming) behind the ``ChatModel`` protocol.

Uses the official SDK with its own retries off (``retry.py`` decides) and maps the raw SSE
events to ``ModelEvent``s: a ``TextDelta`` per ``text_delta``, a ``ToolCallRequest`` when a
``tool_use`` block stops (its ``input_json_delta`` pieces joined and parsed), then ``Usage``
and ``Finish``. SDK and transport errors become ``ProviderError``s; no message ever carries
the API key.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx2
from anthropic import types as wire

from agentplatform.providers import catalog
from agentplatform.providers.base import (
    ChatMessage,
    ChatRequest,
    Finish,
    FinishReason,
    ModelEvent,
    ModelInfo,
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
    error_for_status,
)
from agentplatform.providers.retry import parse_retry_after

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# error.type in a JSON error body or an SSE `error` event → our error class.
_ERROR_TYPES: dict[str, type[ProviderError]] = {
    "authentication_error": ProviderAuthError,
    "permission_error": ProviderAuthError,
    "billing_error": ProviderQuotaError,
    "rate_limit_error": ProviderRateLimited,
    "overloaded_error": ProviderOverloaded,
    "api_error": ProviderOverloaded,
    "timeout_error": ProviderTimeout,
    "invalid_request_error": ProviderBadRequest,
    "not_found_error": ProviderBadRequest,
    "request_too_large": ProviderBadRequest,
}
_SPEND_LIMIT_CODES = frozenset(
    {
        "contract_spend_limit_reached",
        "enforced_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
    }
)
_Side = Literal["user", "assistant"]
_BILLING_WORDS = re.compile(r"credit balance|billing|purchase credits", re.IGNORECASE)
_KEY_LIKE = re.compile(r"sk-ant-[A-Za-z0-9_\-]{4,}")


class AnthropicProvider:
    """Claude models through ``api.anthropic.com`` (or ``base_url``)."""

    name = "anthropic"

    def __init__(self, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self._api_key = api_key or None
        self._base_url = base_url or None
        self._timeout = timeout
        self._client: anthropic.AsyncAnthropic | None = None

    def unavailable_reason(self) -> str | None:
        if self._api_key is None:
            return "ANTHROPIC_API_KEY is not set"
        return None

    async def list_models(self) -> list[ModelInfo]:
        return [catalog.to_info(self.name, model) for model in catalog.ANTHROPIC_MODELS]

    def chat_model(self, model: str) -> AnthropicChatModel:
        return AnthropicChatModel(self, catalog.anthropic_model(model))

    def _sdk_client(self) -> anthropic.AsyncAnthropic:
        """The SDK client, made on first use (never at import or construction)."""
        if self._api_key is None:
            raise ProviderAuthError("Anthropic is not configured: ANTHROPIC_API_KEY is not set")
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
                api_key=self._api_key,
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=0,
            )
        return self._client

    def redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return _KEY_LIKE.sub("[redacted]", text)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


class AnthropicChatModel:
    """One Claude model; ``stream`` makes one Messages API call per invocation."""

    def __init__(self, provider: AnthropicProvider, model: catalog.KnownModel) -> None:
        self._provider = provider
        self._model = model

    @property
    def ref(self) -> str:
        return f"anthropic:{self._model.name}"

    @property
    def context_tokens(self) -> int:
        return self._model.context_tokens

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        client = self._provider._sdk_client()
        try:
            events = await client.messages.create(
                model=self._model.name, stream=True, **_request_params(request)
            )
        except Warning:  # e.g. the SDK's DeprecationWarning for a retiring model: not ours
            raise
        except Exception as exc:
            raise map_error(exc, self._provider.redact) from exc
        state = _StreamState()
        try:
            async for event in events:
                for out in state.feed(event):
                    yield out
        except ProviderError:
            raise
        except Exception as exc:
            raise map_error(exc, self._provider.redact) from exc
        finally:
            await events.close()
        if not state.stopped:
            raise ProviderConnectionError("Anthropic stream ended before message_stop")
        yield Usage(input_tokens=state.input_tokens, output_tokens=state.output_tokens)
        yield Finish(reason=_STOP_REASONS.get(state.stop_reason or "", "other"))


@dataclass
class _ToolBlock:
    id: str
    name: str
    initial: Mapping[str, Any]
    parts: list[str] = field(default_factory=list)

    def request(self) -> ToolCallRequest:
        raw = "".join(self.parts)
        if not raw.strip():
            return ToolCallRequest(id=self.id, name=self.name, arguments=dict(self.initial))
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProviderError(f"Anthropic sent malformed tool input for {self.name}") from exc
        if not isinstance(arguments, dict):
            raise ProviderError(f"Anthropic sent non-object tool input for {self.name}")
        return ToolCallRequest(id=self.id, name=self.name, arguments=arguments)


@dataclass
class _StreamState:
    """Folds raw stream events into ``ModelEvent``s and the totals reported at the end."""

    tools: dict[int, _ToolBlock] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    stopped: bool = False

    def feed(self, event: wire.RawMessageStreamEvent) -> list[ModelEvent]:
        if isinstance(event, wire.RawContentBlockDeltaEvent):
            delta = event.delta
            if isinstance(delta, wire.TextDelta):
                return [TextDelta(text=delta.text)] if delta.text else []
            if isinstance(delta, wire.InputJSONDelta) and event.index in self.tools:
                self.tools[event.index].parts.append(delta.partial_json)
        elif isinstance(event, wire.RawContentBlockStartEvent):
            block = event.content_block
            if isinstance(block, wire.ToolUseBlock):
                self.tools[event.index] = _ToolBlock(block.id, block.name, block.input)
        elif isinstance(event, wire.RawContentBlockStopEvent):
            tool = self.tools.pop(event.index, None)
            return [tool.request()] if tool is not None else []
        elif isinstance(event, wire.RawMessageStartEvent):
            usage = event.message.usage
            self.input_tokens = _total_input(
                usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens
            )
            self.output_tokens = usage.output_tokens
        elif isinstance(event, wire.RawMessageDeltaEvent):
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self.output_tokens = event.usage.output_tokens
            if event.usage.input_tokens is not None:
                self.input_tokens = _total_input(
                    event.usage.input_tokens,
                    event.usage.cache_creation_input_tokens,
                    event.usage.cache_read_input_tokens,
                )
        elif isinstance(event, wire.RawMessageStopEvent):
            self.stopped = True
        return []


def _total_input(base: int, created: int | None, read: int | None) -> int:
    return base + (created or 0) + (read or 0)


def _request_params(request: ChatRequest) -> dict[str, Any]:
    # The SDK no longer has a temperature parameter, so ChatRequest.temperature is not sent.
    params: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "messages": to_messages(request.messages),
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        tools: list[wire.ToolParam] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
            for t in request.tools
        ]
        params["tools"] = tools
    return params


def to_messages(history: tuple[ChatMessage, ...]) -> list[wire.MessageParam]:
    """Our history as Anthropic turns: tool results go in a user turn; same roles merge."""
    turns: list[tuple[_Side, list[wire.ContentBlockParam]]] = []
    for message in history:
        role: _Side = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    out: list[wire.MessageParam] = []
    for role, blocks in turns:
        if role == "assistant":
            out.append(wire.AssistantMessageParam(role="assistant", content=blocks))
        else:
            out.append(wire.UserMessageParam(role="user", content=blocks))
    return out


def _blocks(message: ChatMessage) -> list[wire.ContentBlockParam]:
    if message.role == "tool":
        result = wire.ToolResultBlockParam(
            type="tool_result", tool_use_id=message.tool_call_id or "", content=message.content
        )
        if message.is_error:
            result["is_error"] = True
        return [result]
    blocks: list[wire.ContentBlockParam] = []
    if message.content:
        blocks.append(wire.TextBlockParam(type="text", text=message.content))
    blocks.extend(
        wire.ToolUseBlockParam(type="tool_use", id=c.id, name=c.name, input=dict(c.arguments))
        for c in message.tool_calls
    )
    return blocks


def map_error(exc: Exception, redact: Callable[[str], str] = str) -> ProviderError:
    """An SDK or transport exception as one of our ``ProviderError`` classes."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeout("Anthropic request timed out")
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return ProviderConnectionError(f"Anthropic connection failed: {type(exc).__name__}")
    if not isinstance(exc, anthropic.APIStatusError):
        return ProviderError(f"Anthropic call failed: {type(exc).__name__}")
    # An SSE `error` event arrives on a 200 response: only its error.type tells what it is.
    status = exc.status_code if exc.status_code >= 400 else None
    err_type = exc.type or ""
    detail = redact(exc.api_message or "no details")
    request_id = f" [request-id {exc.request_id}]" if exc.request_id else ""
    message = f"Anthropic API error {status or err_type}: {detail}{request_id}"
    cls = _classify(status, err_type, exc.error_code, detail)
    if cls is ProviderRateLimited:
        retry_after = parse_retry_after(exc.response.headers) if status else None
        return ProviderRateLimited(message, status=status, retry_after=retry_after)
    return cls(message, status=status)


def _classify(
    status: int | None, err_type: str, code: str | None, detail: str
) -> type[ProviderError]:
    if code in _SPEND_LIMIT_CODES or err_type == "billing_error" or status == 402:
        return ProviderQuotaError
    if status is None:
        return _ERROR_TYPES.get(err_type, ProviderOverloaded)
    if status == 400 and _BILLING_WORDS.search(detail):
        return ProviderQuotaError
    return error_for_status(status)
