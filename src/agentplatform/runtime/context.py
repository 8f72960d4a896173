"""Builds the model's view of a conversation: instructions plus as much history as fits."""

from __future__ import annotations

from collections.abc import Sequence

from agentplatform.providers.base import ChatMessage, ChatRequest
from agentplatform.store.tables import Agent, Message

CHARS_PER_TOKEN = 3.5
PER_MESSAGE_TOKENS = 4
MIN_REPLY_TOKENS = 64


def estimate_tokens(text: str) -> int:
    """A cheap, deliberately generous estimate; no tokenizer is loaded for this."""
    return int(len(text) / CHARS_PER_TOKEN) + PER_MESSAGE_TOKENS


def build_request(agent: Agent, history: Sequence[Message], context_tokens: int) -> ChatRequest:
    """Newest messages first until the budget is spent; the latest user turn always stays."""
    max_tokens = max(MIN_REPLY_TOKENS, min(agent.max_tokens, context_tokens // 2))
    budget = context_tokens - max_tokens - estimate_tokens(agent.instructions)
    kept: list[ChatMessage] = []
    for message in reversed(history):
        if message.role not in ("user", "assistant") or not message.content:
            continue
        cost = estimate_tokens(message.content)
        if kept and cost > budget:
            break
        text = message.content
        if not kept and cost > budget:  # the newest user turn alone is too long: keep its end
            keep_chars = max(int(max(budget, MIN_REPLY_TOKENS) * CHARS_PER_TOKEN), 1)
            text = text[-keep_chars:]
        budget -= cost
        kept.append(
            ChatMessage(role="user" if message.role == "user" else "assistant", content=text)
        )
    kept.reverse()
    while kept and kept[0].role != "user":  # providers want the history to open with the user
        kept.pop(0)
    return ChatRequest(
        system=agent.instructions,
        messages=tuple(kept),
        temperature=agent.temperature,
        max_tokens=max_tokens,
    )
