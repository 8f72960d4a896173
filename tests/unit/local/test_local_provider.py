"""The local provider streams from the real Gemma 3 270M file through llama.cpp."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentplatform.providers.base import (
    ChatMessage,
    ChatModel,
    ChatRequest,
    Finish,
    ModelEvent,
    ProviderBadRequest,
    ProviderError,
    TextDelta,
    ToolSpec,
    Usage,
)
from agentplatform.providers.gguf_files import packaged_model
from agentplatform.providers.local import N_CTX, LocalChatModel, LocalProvider

# Greedy, the model answers this with all 2000 tokens it is allowed (measured).
RAMBLE = "Write a very long story about a dragon, a knight and a village. Once upon a time"
# A stopped generation frees the model within a token; an uncut one would take ~50 s.
STOPPED_WITHIN = 10.0


def request(
    text: str, *, max_tokens: int, temperature: float = 0.0, tools: tuple[ToolSpec, ...] = ()
) -> ChatRequest:
    return ChatRequest(
        system="You are a helpful assistant.",
        messages=(ChatMessage(role="user", content=text),),
        temperature=temperature,
        max_tokens=max_tokens,
        tools=tools,
    )


async def collect(stream: AsyncIterator[ModelEvent]) -> list[ModelEvent]:
    return [event async for event in stream]


def check_shape(events: list[ModelEvent]) -> tuple[str, Usage, Finish]:
    """TextDelta* Usage Finish, as the contract in base.py says."""
    *deltas, usage, finish = events
    assert all(isinstance(e, TextDelta) for e in deltas), events
    assert isinstance(usage, Usage)
    assert isinstance(finish, Finish)
    return "".join(e.text for e in deltas if isinstance(e, TextDelta)), usage, finish


async def test_lists_one_offline_demo_model(provider: LocalProvider) -> None:
    [info] = await provider.list_models()
    assert (info.ref, info.provider, info.name) == ("local:gemma-3-270m", "local", "gemma-3-270m")
    assert info.offline_demo
    assert "offline demo" in info.label
    assert info.context_tokens == N_CTX
    model = provider.chat_model("gemma-3-270m")
    assert isinstance(model, ChatModel)
    assert (model.ref, model.context_tokens) == ("local:gemma-3-270m", N_CTX)


async def test_streams_text_then_usage_then_finish(provider: LocalProvider) -> None:
    model = provider.chat_model("gemma-3-270m")
    events = await collect(model.stream(request("The capital of France is", max_tokens=24)))

    text, usage, finish = check_shape(events)
    assert text.strip()
    assert usage.input_tokens > 5
    assert 0 < usage.output_tokens <= 24
    assert finish.reason in {"stop", "length"}


async def test_prompt_is_gemma_turns_with_the_system_text_first(
    provider: LocalProvider, gguf_cache: Path
) -> None:
    import llama_cpp  # the test's own tokenizer: the provider must send exactly this prompt

    expected = (
        "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    model = provider.chat_model("gemma-3-270m")
    _, usage, _ = check_shape(await collect(model.stream(request("Hi", max_tokens=1))))

    path = gguf_cache / packaged_model().file_name  # assembled by the first stream
    tokenizer = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        tokens = tokenizer.tokenize(expected.encode(), add_bos=False, special=True)
    finally:
        tokenizer.close()
    assert usage.input_tokens == len(tokens)


async def test_max_tokens_caps_the_reply(provider: LocalProvider) -> None:
    model = provider.chat_model("gemma-3-270m")
    tools = (ToolSpec("clock", "Tells the time.", {"type": "object", "properties": {}}),)
    events = await collect(model.stream(request(RAMBLE, max_tokens=8, tools=tools)))

    _, usage, finish = check_shape(events)  # tools are ignored: no ToolCallRequest
    assert usage.output_tokens <= 8
    assert finish.reason == ("length" if usage.output_tokens == 8 else "stop")


async def test_history_with_turns_and_tool_results(provider: LocalProvider) -> None:
    model = provider.chat_model("gemma-3-270m")
    history = (
        ChatMessage(role="assistant", content="Hello! How can I help?"),
        ChatMessage(role="user", content="What time is it?"),
        ChatMessage(role="user", content="Please answer briefly."),
        ChatMessage(role="tool", content="12:00", tool_call_id="t1"),
    )
    req = ChatRequest(system="Be brief.", messages=history, temperature=0.7, max_tokens=6)
    _, usage, _ = check_shape(await collect(model.stream(req)))
    assert usage.input_tokens > 20


async def test_too_long_a_conversation_is_a_bad_request(provider: LocalProvider) -> None:
    model = provider.chat_model("gemma-3-270m")
    with pytest.raises(ProviderBadRequest, match="context"):
        await collect(model.stream(request("word " * (N_CTX + 100), max_tokens=8)))
    # The lock was released: the model still answers.
    check_shape(await collect(model.stream(request("Hi", max_tokens=2))))


async def test_aclose_after_first_delta_stops_generation(provider: LocalProvider) -> None:
    model = provider.chat_model("gemma-3-270m")
    stream = model.stream(request(RAMBLE, max_tokens=2000))
    assert isinstance(await anext(stream), TextDelta)
    assert provider.busy
    started = asyncio.Event()
    second = asyncio.create_task(first_event_after_lock(model, started))

    async def close_then_restart() -> None:
        await stream.aclose()  # returns once the worker thread is idle
        await started.wait()

    # Uncut, this greedy reply runs all 2000 tokens (~50 s on 2 cores) and holds the lock.
    await asyncio.wait_for(close_then_restart(), timeout=STOPPED_WITHIN)
    await second


async def test_cancelling_the_consumer_stops_generation(provider: LocalProvider) -> None:
    model = provider.chat_model("gemma-3-270m")
    got_delta = asyncio.Event()

    async def consume() -> None:
        async for event in model.stream(request(RAMBLE, max_tokens=2000)):
            if isinstance(event, TextDelta):
                got_delta.set()

    task = asyncio.create_task(consume())
    await got_delta.wait()
    task.cancel()
    # The task ends (and frees the lock) only once the worker thread has stopped.
    done, _ = await asyncio.wait({task}, timeout=STOPPED_WITHIN)
    assert task in done and task.cancelled()
    assert not provider.busy
    started = asyncio.Event()
    await asyncio.wait_for(first_event_after_lock(model, started), timeout=STOPPED_WITHIN)
    assert started.is_set()


async def test_concurrent_streams_take_turns(provider: LocalProvider) -> None:
    model = provider.chat_model("gemma-3-270m")
    replies = await asyncio.gather(
        collect(model.stream(request("Hello", max_tokens=4))),
        collect(model.stream(request("Good morning", max_tokens=4))),
    )
    for events in replies:
        _, usage, _ = check_shape(events)
        assert usage.output_tokens <= 4


async def test_closing_the_provider_interrupts_a_reply(
    gguf_cache: Path, llama_cpp_files: None
) -> None:
    local = LocalProvider(model_path=None, cache_dir=gguf_cache)
    model = local.chat_model("gemma-3-270m")
    stream = model.stream(request(RAMBLE, max_tokens=2000))
    assert isinstance(await anext(stream), TextDelta)

    closing = asyncio.create_task(local.aclose())
    with pytest.raises(ProviderError, match="closed"):
        async with asyncio.timeout(STOPPED_WITHIN):
            async for _ in stream:
                pass
    await closing

    assert local.unavailable_reason() == "the local provider is closed"
    with pytest.raises(ProviderError, match="closed"):
        await collect(model.stream(request("Hi", max_tokens=2)))


async def first_event_after_lock(model: LocalChatModel, started: asyncio.Event) -> None:
    stream = model.stream(request("Hi", max_tokens=2))
    try:
        await anext(stream)
        started.set()
    finally:
        await stream.aclose()


def test_missing_model_file_is_unavailable(tmp_path: Path) -> None:
    local = LocalProvider(model_path=tmp_path / "nowhere.gguf", cache_dir=tmp_path)
    reason = local.unavailable_reason()
    assert reason is not None
    assert "nowhere.gguf" in reason or "agentplatform[local]" in reason
    assert local.model_name == "nowhere"


async def test_missing_model_file_fails_cleanly(tmp_path: Path) -> None:
    local = LocalProvider(model_path=tmp_path / "nowhere.gguf", cache_dir=tmp_path)
    [info] = await local.list_models()
    assert (info.ref, info.offline_demo) == ("local:nowhere", False)
    with pytest.raises(ProviderError) as caught:
        await collect(local.chat_model("nowhere").stream(request("Hi", max_tokens=2)))
    assert "Traceback" not in caught.value.message
    await local.aclose()


async def test_a_file_that_is_not_gguf_fails_cleanly(
    tmp_path: Path, llama_cpp_files: None, capfd: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model" * 100)
    local = LocalProvider(model_path=bogus, cache_dir=tmp_path)
    assert local.unavailable_reason() is None  # only loading can tell
    with pytest.raises(ProviderError, match=r"could not load bogus\.gguf") as caught:
        await collect(local.chat_model("bogus").stream(request("Hi", max_tokens=2)))
    assert "Traceback" not in caught.value.message
    assert capfd.readouterr().err == ""  # llama.cpp's own error log stays silent
    await local.aclose()


async def test_unknown_model_is_a_bad_request(tmp_path: Path) -> None:
    local = LocalProvider(model_path=None, cache_dir=tmp_path)
    with pytest.raises(ProviderBadRequest):
        local.chat_model("llama-70b")
    await local.aclose()
