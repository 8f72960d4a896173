"""Builds the model's view of a conversation: instructions plus as much history as fits.

Assistant turns that used tools are replayed step by step from their stored parts (text,
``tool_call``, ``tool_result``), so the model sees what it did before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentplatform.providers.base import ChatMessage, ChatRequest, ToolCall, ToolSpec
from agentplatform.store.tables import Agent, Message

CHARS_PER_TOKEN = 3.5
PER_MESSAGE_TOKENS = 4
MIN_REPLY_TOKENS = 64


def estimate_tokens(text: str) -> int:
    """A cheap, deliberately generous estimate; no tokenizer is loaded for this."""
    return int(len(text) / CHARS_PER_TOKEN) + PER_MESSAGE_TOKENS


def steps_to_messages(parts: Sequence[dict[str, Any]]) -> list[ChatMessage]:
    """Stored parts of one assistant turn → assistant/tool messages in the providers' shape."""
    messages: list[ChatMessage] = []
    text = ""
    calls: list[ToolCall] = []
    answered = False  # the current step's calls have been written out with their results
    for part in parts:
        kind = part.get("type")
        if kind in ("text", "tool_call") and answered:  # a new step begins
            text, calls, answered = "", [], False
        if kind == "text":
            text += str(part.get("text", ""))
        elif kind == "tool_call":
            calls.append(ToolCall(part["call_id"], part["name"], part.get("arguments") or {}))
        elif kind == "tool_result":
            if calls and not answered:
                messages.append(ChatMessage("assistant", text, tool_calls=tuple(calls)))
                answered = True
            messages.append(
                ChatMessage(
                    "tool",
                    str(part.get("content", "")),
                    tool_call_id=part["call_id"],
                    is_error=bool(part.get("is_error")),
                )
            )
    if text and not calls:
        messages.append(ChatMessage("assistant", text))
    return messages


def _turn(message: Message) -> list[ChatMessage]:
    if message.role == "user":
        return [ChatMessage("user", message.content)] if message.content else []
    if message.parts:
        return steps_to_messages(message.parts)
    return [ChatMessage("assistant", message.content)] if message.content else []


def _cost(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content) + 20 * len(m.tool_calls) for m in messages)


def build_request(
    agent: Agent,
    history: Sequence[Message],
    context_tokens: int,
    tools: tuple[ToolSpec, ...] = (),
) -> ChatRequest:
    """Newest turns first until the budget is spent; the latest user turn always stays."""
    max_tokens = max(MIN_REPLY_TOKENS, min(agent.max_tokens, context_tokens // 2))
    budget = context_tokens - max_tokens - estimate_tokens(agent.instructions)
    kept: list[list[ChatMessage]] = []
    for message in reversed(history):
        if message.role not in ("user", "assistant"):
            continue
        turn = _turn(message)
        if not turn:
            continue
        cost = _cost(turn)
        if kept and cost > budget:
            break
        if not kept and cost > budget:  # the newest user turn alone is too long: keep its end
            keep_chars = max(int(max(budget, MIN_REPLY_TOKENS) * CHARS_PER_TOKEN), 1)
            turn = [ChatMessage("user", turn[-1].content[-keep_chars:])]
        budget -= cost
        kept.append(turn)
    flat = [m for turn in reversed(kept) for m in turn]
    while flat and flat[0].role != "user":  # providers want the history to open with the user
        flat.pop(0)
    return ChatRequest(
        system=agent.instructions,
        messages=tuple(flat),
        temperature=agent.temperature,
        max_tokens=max_tokens,
        tools=tools,
    )
