"""The model's view of a conversation: instructions, then as much recent history as fits."""

from __future__ import annotations

from agentplatform.runtime.context import build_request, estimate_tokens
from agentplatform.store.tables import Agent, Message


def agent(**fields: object) -> Agent:
    values: dict[str, object] = {
        "instructions": "Be brief.", "temperature": 0.3, "max_tokens": 500, "model": "x:y",
    }  # fmt: skip
    values.update(fields)
    return Agent(**values)


def history(*turns: str) -> list[Message]:
    return [
        Message(role="user" if i % 2 == 0 else "assistant", content=text, seq=i + 1)
        for i, text in enumerate(turns)
    ]


def test_everything_fits() -> None:
    request = build_request(agent(), history("hi", "hello", "how are you?"), 8000)
    assert request.system == "Be brief."
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert request.messages[-1].content == "how are you?"
    assert (request.temperature, request.max_tokens) == (0.3, 500)


def test_old_turns_are_dropped_first_and_history_opens_with_the_user() -> None:
    long = "x" * 3000
    turns = history(long, long, long, long, "latest question")
    request = build_request(agent(max_tokens=200), turns, 2048)
    assert request.messages[-1].content == "latest question"
    assert request.messages[0].role == "user"
    used = sum(estimate_tokens(m.content) for m in request.messages)
    assert used + request.max_tokens + estimate_tokens("Be brief.") <= 2048
    assert len(request.messages) < len(turns)


def test_a_huge_last_message_is_cut_not_dropped() -> None:
    huge = "start " + "y" * 50_000 + " end"
    request = build_request(agent(max_tokens=100), history(huge), 2048)
    assert len(request.messages) == 1
    assert request.messages[0].content.endswith(" end")
    assert len(request.messages[0].content) < len(huge)


def test_reply_budget_is_capped_by_the_context() -> None:
    request = build_request(agent(max_tokens=64_000), history("hi"), 4096)
    assert request.max_tokens == 2048


def test_empty_and_unfinished_messages_are_skipped() -> None:
    turns = history("question", "")
    request = build_request(agent(), turns, 8000)
    assert [m.content for m in request.messages] == ["question"]
