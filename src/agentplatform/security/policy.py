"""The app's limits in one object, built from settings: budgets, caps, quotas, client address.

``enforce`` counts a request against a budget and refuses it with ``RateLimited`` (429, with
``Retry-After``) when the budget is spent. The ``Usage`` it saw is noted in the ASGI scope's
``state`` under ``STATE_KEY``, the tightest one winning, for the middleware that writes the
``RateLimit-*`` headers on the way out (``api/limits.py``).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from agentplatform.config import Settings
from agentplatform.errors import RateLimited
from agentplatform.security.client_ip import ClientAddress, parse_networks
from agentplatform.security.quotas import GuestQuotas
from agentplatform.security.ratelimit import Budget, RateLimiter, Usage, parse_rates

STATE_KEY = "agentplatform.rate_limit"
Scope = MutableMapping[str, Any]


def note(scope: Scope | None, usage: Usage) -> None:
    """Remember ``usage`` for the response headers if it is the tightest seen so far."""
    if scope is None:
        return
    state = scope.setdefault("state", {})
    state[STATE_KEY] = usage.tighter(state.get(STATE_KEY))


def noted(scope: Scope) -> Usage | None:
    usage = scope.get("state", {}).get(STATE_KEY)
    return usage if isinstance(usage, Usage) else None


def refusal(usage: Usage, message: str, budget: str) -> RateLimited:
    return RateLimited(message, details={"budget": budget}, retry_after=usage.retry_after)


@dataclass(frozen=True, slots=True)
class Limits:
    limiter: RateLimiter
    addresses: ClientAddress
    quotas: GuestQuotas
    runs_per_user: int  # 0: no cap
    sockets_per_user: int  # 0: no cap
    on_refused: Callable[[str], None] | None = None  # told each refusal's budget (metrics)

    @classmethod
    def from_settings(
        cls, settings: Settings, on_refused: Callable[[str], None] | None = None
    ) -> Limits:
        budgets = {
            Budget.GUEST_SESSIONS: parse_rates(settings.rate_limit_guest_sessions),
            Budget.IP: parse_rates(settings.rate_limit_ip),
            Budget.USER: parse_rates(settings.rate_limit_user),
            Budget.CHAT: parse_rates(settings.rate_limit_chat),
        }
        enabled = settings.rate_limits
        limiter = (
            RateLimiter.redis(settings.redis_url, budgets, enabled=enabled)
            if settings.redis_url
            else RateLimiter.in_memory(budgets, enabled=enabled)
        )
        return cls(
            limiter=limiter,
            addresses=ClientAddress(parse_networks(settings.trusted_proxies)),
            quotas=GuestQuotas(
                agents=settings.guest_max_agents,
                messages_per_day=settings.guest_messages_per_day,
                tokens_per_day=settings.guest_tokens_per_day,
            ),
            runs_per_user=settings.runs_per_user if enabled else 0,
            sockets_per_user=settings.ws_connections_per_user if enabled else 0,
            on_refused=on_refused,
        )

    def refused(self, budget: str) -> None:
        """Report one refusal (``api_ip``, ``chat_user``, ``quota_tokens``, ``ws_user``…)."""
        if self.on_refused is not None:
            self.on_refused(budget)

    async def enforce(
        self, budget: Budget, key: str, scope: Scope | None = None, message: str | None = None
    ) -> Usage | None:
        """Count one request; raises ``RateLimited`` when ``key``'s budget is spent."""
        usage = await self.limiter.hit(budget, key)
        if usage is None:
            return None
        note(scope, usage)
        if not usage.allowed:
            self.refused(budget.value)
            raise refusal(usage, message or "Too many requests; slow down.", budget.value)
        return usage

    async def aclose(self) -> None:
        await self.limiter.aclose()
