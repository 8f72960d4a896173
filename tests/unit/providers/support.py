"""Helpers for the provider tests: collecting streams, recording sleeps, sample requests."""

from __future__ import annotations

from collections.abc import Iterable

from agentplatform.providers.base import (
    ChatMessage,
    ChatModel,
    ChatRequest,
    ModelEvent,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolSpec,
)

ANTHROPIC_KEY = "sk-ant-api03-SECRET-test-key-0123456789"
OPENAI_KEY = "sk-proj-SECRET-test-key-abcdef0123456789"

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


def ask(
    text: str = "Hello?", *, system: str = "Be brief.", tools: tuple[ToolSpec, ...] = ()
) -> ChatRequest:
    return ChatRequest(system=system, messages=(ChatMessage("user", text),), tools=tools)


def history_request() -> ChatRequest:
    """A conversation with every kind of turn: text, tool calls, tool results, an error."""
    return ChatRequest(
        system="You are terse.",
        messages=(
            ChatMessage("user", "Weather in Paris and Oslo?"),
            ChatMessage(
                "assistant",
                "Checking.",
                tool_calls=(
                    ToolCall("call_1", "get_weather", {"city": "Paris"}),
                    ToolCall("call_2", "get_weather", {"city": "Oslo"}),
                ),
            ),
            ChatMessage("tool", "18C sunny", tool_call_id="call_1"),
            ChatMessage("tool", "station offline", tool_call_id="call_2", is_error=True),
            ChatMessage("assistant", "Paris is 18C; Oslo is unknown."),
            ChatMessage("user", "Thanks"),
        ),
        temperature=0.2,
        max_tokens=300,
        tools=(WEATHER,),
    )


async def collect(model: ChatModel, request: ChatRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


async def collect_until_error(
    model: ChatModel, request: ChatRequest
) -> tuple[list[ModelEvent], ProviderError]:
    """The events yielded before the stream raised, and the error (which must come)."""
    events: list[ModelEvent] = []
    try:
        async for event in model.stream(request):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    raise AssertionError(f"stream ended without an error after {events}")


def texts(events: Iterable[ModelEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


class Sleeps:
    """A stand-in for ``asyncio.sleep`` that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
