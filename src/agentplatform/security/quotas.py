"""Guest quotas: what one guest may use, in agents and per UTC day in messages and tokens.

A public deployment hands guest sessions to anyone and pays for their tokens, so a guest's
turn is checked *before* its run starts: once a quota is spent, no model is called. A
"message" is a chat turn (each turn is one run); "tokens" are the model's input plus output
tokens of the guest's runs since midnight UTC. Zero means unlimited. The decisions here are
pure: they say what is ``Spent`` and the API layer refuses; the counts come from
``store/repositories/usage.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agentplatform.security.ratelimit import Usage

GUEST = "guest"


@dataclass(frozen=True, slots=True)
class GuestQuotas:
    agents: int = 0
    messages_per_day: int = 0
    tokens_per_day: int = 0

    def applies_to(self, kind: str) -> bool:
        return kind == GUEST


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: when the daily quotas last started over."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_to_midnight(now: datetime) -> float:
    return (day_start(now) + timedelta(days=1) - now).total_seconds()


@dataclass(frozen=True, slots=True)
class Spent:
    """A quota that is used up: which one, and how it stands (for the RateLimit headers)."""

    name: str  # quota_agents | quota_messages | quota_tokens (metrics, error details)
    what: str
    usage: Usage

    @property
    def message(self) -> str:
        return f"The guest quota of {self.usage.limit} {self.what} is used up."


def spent_agents(quotas: GuestQuotas, owned: int) -> Spent | None:
    """Whether one more agent would be over the quota. Only deleting one frees a place."""
    if quotas.agents and owned >= quotas.agents:
        usage = Usage(limit=quotas.agents, remaining=0, reset_after=0, allowed=False)
        return Spent("quota_agents", "agents", usage)
    return None


def spent_turn(quotas: GuestQuotas, *, messages: int, tokens: int, now: datetime) -> Spent | None:
    """Whether today's messages or tokens are used up; they come back at midnight UTC."""
    reset_after = seconds_to_midnight(now)
    for name, what, limit, used in (
        ("quota_messages", "messages per day", quotas.messages_per_day, messages),
        ("quota_tokens", "tokens per day", quotas.tokens_per_day, tokens),
    ):
        if limit and used >= limit:
            usage = Usage(limit=limit, remaining=0, reset_after=reset_after, allowed=False)
            return Spent(name, what, usage)
    return None
