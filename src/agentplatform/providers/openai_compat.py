"""Any OpenAI-compatible Chat Completions server behind the ``ChatModel`` protocol.

OpenAI itself, vLLM, Ollama, llama.cpp's server… all speak ``POST /chat/completions`` with
``stream: true``. Text deltas are yielded as they arrive; tool calls are assembled across
chunks by their ``index`` and yielded when the stream finishes; usage comes from the final
chunk (``stream_options.include_usage``). SDK retries are off (``retry.py`` decides) and SDK
errors become ``ProviderError``s whose messages never carry the API key.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai.types import chat as wire

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

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Servers such as Ollama want no key, but the SDK refuses to start without one.
PLACEHOLDER_KEY = "not-needed"
LIST_TIMEOUT = 5.0
LIST_TTL = 300.0
LIST_FAILURE_TTL = 30.0

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_NOT_CHAT = re.compile(
    r"embed|tts|whisper|dall-e|davinci|babbage|moderation|transcribe|image|audio|realtime|search"
)
_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")


class OpenAICompatProvider:
    """OpenAI, or any server at ``base_url`` that speaks its Chat Completions API."""

    name = "openai"

    def __init__(self, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self._api_key = api_key or None
        self._base_url = (base_url or "").rstrip("/") or None
        self._timeout = timeout
        self._client: openai.AsyncOpenAI | None = None
        self._listed: tuple[float, list[ModelInfo]] | None = None

    @property
    def is_default_server(self) -> bool:
        return _is_default(self._base_url)

    def unavailable_reason(self) -> str | None:
        if self._api_key is None and self._base_url is None:
            return "neither OPENAI_API_KEY nor OPENAI_BASE_URL is set"
        return None

    def chat_model(self, model: str) -> OpenAIChatModel:
        return OpenAIChatModel(self, catalog.openai_model(model))

    def _sdk_client(self) -> openai.AsyncOpenAI:
        """The SDK client, made on first use (never at import or construction)."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise ProviderAuthError(f"OpenAI-compatible provider is not configured: {reason}")
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key or PLACEHOLDER_KEY,
                base_url=self._base_url or DEFAULT_BASE_URL,
                timeout=self._timeout,
                max_retries=0,
            )
        return self._client

    async def list_models(self) -> list[ModelInfo]:
        """``GET /models`` (cached); a static list for api.openai.com if that fails."""
        now = time.monotonic()
        if self._listed is not None and self._listed[0] > now:
            return list(self._listed[1])
        try:
            page = await self._sdk_client().models.list(timeout=LIST_TIMEOUT)
            names = sorted(m.id for m in page.data)
        except Exception as exc:
            log.warning("listing models at %s failed: %s", self._server(), self.redact(str(exc)))
            models = fallback_models(self._base_url)
            self._listed = (now + LIST_FAILURE_TTL, models)
            return list(models)
        if self.is_default_server:
            names = [n for n in names if not _NOT_CHAT.search(n)]
        models = [catalog.to_info(self.name, catalog.openai_model(n)) for n in names]
        self._listed = (now + LIST_TTL, models)
        return list(models)

    def _server(self) -> str:
        return self._base_url or DEFAULT_BASE_URL

    def redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return _KEY_LIKE.sub("[redacted]", text)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def fallback_models(base_url: str | None) -> list[ModelInfo]:
    """What to list when ``GET /models`` fails: the static list for api.openai.com only."""
    if not _is_default(base_url):
        return []
    return [catalog.to_info("openai", m) for m in catalog.OPENAI_MODELS]


def _is_default(base_url: str | None) -> bool:
    return base_url is None or base_url.rstrip("/") == DEFAULT_BASE_URL


class OpenAIChatModel:
    """One model of the server; ``stream`` makes one Chat Completions call per invocation."""

    def __init__(self, provider: OpenAICompatProvider, model: catalog.KnownModel) -> None:
        self._provider = provider
        self._model = model

    @property
    def ref(self) -> str:
        return f"openai:{self._model.name}"

    @property
    def context_tokens(self) -> int:
        return self._model.context_tokens

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        client = self._provider._sdk_client()
        params = request_params(request, modern=self._provider.is_default_server)
        try:
            chunks = await client.chat.completions.create(
                model=self._model.name,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
        except Exception as exc:
            raise map_error(exc, self._provider.redact) from exc
        state = _StreamState()
        try:
            async for chunk in chunks:
                for out in state.feed(chunk):
                    yield out
        except ProviderError:
            raise
        except Exception as exc:
            raise map_error(exc, self._provider.redact) from exc
        finally:
            await chunks.close()
        for out in state.finish():
            yield out


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def request(self) -> ToolCallRequest:
        raw = "".join(self.arguments).strip() or "{}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProviderError(f"model sent malformed arguments for tool {self.name}") from exc
        if not isinstance(arguments, dict):
            raise ProviderError(f"model sent non-object arguments for tool {self.name}")
        call_id = self.id or f"call_{uuid.uuid4().hex[:24]}"
        return ToolCallRequest(id=call_id, name=self.name, arguments=arguments)


@dataclass
class _StreamState:
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None

    def feed(self, chunk: wire.ChatCompletionChunk) -> list[ModelEvent]:
        if chunk.usage is not None:
            self.usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        out: list[ModelEvent] = []
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                out.append(TextDelta(text=delta.content))
            for piece in delta.tool_calls or ():
                call = self.calls.setdefault(piece.index, _PartialCall())
                call.id = call.id or piece.id or ""
                if piece.function is not None:
                    call.name += piece.function.name or ""
                    call.arguments.append(piece.function.arguments or "")
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        return out

    def finish(self) -> list[ModelEvent]:
        if self.finish_reason is None:
            raise ProviderConnectionError("stream ended without a finish_reason")
        reason = _FINISH.get(self.finish_reason, "other")
        out: list[ModelEvent] = []
        if self.calls and reason in ("tool_calls", "stop"):
            # Some servers (older Ollama) say "stop" after tool calls; the calls still count.
            out.extend(self.calls[i].request() for i in sorted(self.calls))
            reason = "tool_calls"
        if self.usage is not None:
            out.append(self.usage)
        out.append(Finish(reason=reason))
        return out


def request_params(request: ChatRequest, *, modern: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        "messages": to_messages(request.system, request.messages),
        "temperature": request.temperature,
    }
    # api.openai.com deprecated max_tokens; most other servers only know max_tokens.
    params["max_completion_tokens" if modern else "max_tokens"] = request.max_tokens
    if request.tools:
        tools: list[wire.ChatCompletionFunctionToolParam] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                },
            }
            for t in request.tools
        ]
        params["tools"] = tools
    return params


def to_messages(
    system: str, history: tuple[ChatMessage, ...]
) -> list[wire.ChatCompletionMessageParam]:
    """Our history in OpenAI's shape: system first, assistant tool_calls, ``tool`` replies."""
    out: list[wire.ChatCompletionMessageParam] = []
    if system:
        out.append(wire.ChatCompletionSystemMessageParam(role="system", content=system))
    for message in history:
        if message.role == "user":
            out.append(wire.ChatCompletionUserMessageParam(role="user", content=message.content))
        elif message.role == "tool":
            content = f"ERROR: {message.content}" if message.is_error else message.content
            out.append(
                wire.ChatCompletionToolMessageParam(
                    role="tool", tool_call_id=message.tool_call_id or "", content=content
                )
            )
        else:
            out.append(_assistant(message))
    return out


def _assistant(message: ChatMessage) -> wire.ChatCompletionAssistantMessageParam:
    turn = wire.ChatCompletionAssistantMessageParam(
        role="assistant", content=message.content or None
    )
    if message.tool_calls:
        turn["tool_calls"] = [
            wire.ChatCompletionMessageFunctionToolCallParam(
                id=call.id,
                type="function",
                function={"name": call.name, "arguments": json.dumps(dict(call.arguments))},
            )
            for call in message.tool_calls
        ]
    return turn


def map_error(exc: Exception, redact: Callable[[str], str] = str) -> ProviderError:
    """An SDK or transport exception as one of our ``ProviderError`` classes."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeout("OpenAI-compatible request timed out")
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return ProviderConnectionError(f"OpenAI-compatible connection failed: {type(exc).__name__}")
    if not isinstance(exc, openai.APIError):
        return ProviderError(f"OpenAI-compatible call failed: {type(exc).__name__}")
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
    kind = exc.code or exc.type or ""
    detail = redact(exc.message if status is None else _api_message(exc.body, exc.message))
    message = f"OpenAI-compatible API error {status or kind or 'in stream'}: {detail}"
    cls = _classify(status, kind, exc.type or "")
    if cls is ProviderRateLimited and isinstance(exc, openai.APIStatusError):
        retry_after = parse_retry_after(exc.response.headers)
        return ProviderRateLimited(message, status=status, retry_after=retry_after)
    return cls(message, status=status)


def _api_message(body: object, fallback: str) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return fallback


def _classify(status: int | None, code: str, err_type: str) -> type[ProviderError]:
    if code in _QUOTA_CODES or err_type in _QUOTA_CODES or status == 402:
        return ProviderQuotaError
    if status is None:  # an error object inside the stream
        if "rate_limit" in code or "rate_limit" in err_type:
            return ProviderRateLimited
        if err_type == "invalid_request_error":
            return ProviderBadRequest
        return ProviderOverloaded
    return error_for_status(status)
