"""The retry policy for model calls, as a ``ChatModel`` that wraps another.

A call is retried only while nothing has reached the caller: once the first event is out, a
retry would repeat text the user already saw, so any later error propagates unchanged.
Only retryable ``ProviderError`` subclasses (rate limit, overload, timeout, connection) are
retried, with exponential backoff and jitter; a server's ``Retry-After`` is honoured up to a
cap. Everything else propagates at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from agentplatform.providers.base import (
    ChatModel,
    ChatRequest,
    ModelEvent,
    ProviderError,
    ProviderRateLimited,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class RetryingChatModel:
    """Retries ``inner`` on retryable errors raised before its first event."""

    def __init__(
        self,
        inner: ChatModel,
        attempts: int = 3,
        base_delay: float = 0.25,
        sleep: Sleep = asyncio.sleep,
        *,
        max_delay: float = 8.0,
        max_retry_after: float = 20.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.inner = inner
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._jitter = jitter

    @property
    def ref(self) -> str:
        return self.inner.ref

    @property
    def context_tokens(self) -> int:
        return self.inner.context_tokens

    def delay_for(self, attempt: int, error: ProviderError) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        delay = backoff / 2 + self._jitter() * backoff / 2
        if isinstance(error, ProviderRateLimited) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.max_retry_after))
        return delay

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        attempt = 0
        while True:
            attempt += 1
            events = self.inner.stream(request)
            started = False
            try:
                async for event in events:
                    started = True
                    yield event
                return
            except ProviderError as error:
                if started or not error.retryable or attempt >= self.attempts:
                    raise
                delay = self.delay_for(attempt, error)
                log.warning(
                    "model %s failed (%s), retry %d/%d in %.2fs",
                    self.ref,
                    error.code,
                    attempt,
                    self.attempts - 1,
                    delay,
                )
            finally:
                await _aclose(events)
            await self._sleep(delay)


async def _aclose(events: AsyncIterator[ModelEvent]) -> None:
    aclose: Callable[[], Awaitable[object]] | None = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if any."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
