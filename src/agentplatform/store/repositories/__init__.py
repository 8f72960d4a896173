"""Repositories: the only code that queries tables. Every query is scoped to its owner."""

from agentplatform.store.repositories.agents import AgentRepository
from agentplatform.store.repositories.conversations import ConversationRepository
from agentplatform.store.repositories.identity import IdentityRepository
from agentplatform.store.repositories.messages import MessageRepository
from agentplatform.store.repositories.paging import Page
from agentplatform.store.repositories.runs import Outcome, RunContext, RunRepository, Turn

__all__ = [
    "AgentRepository",
    "ConversationRepository",
    "IdentityRepository",
    "MessageRepository",
    "Outcome",
    "Page",
    "RunContext",
    "RunRepository",
    "Turn",
]
