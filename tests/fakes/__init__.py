"""Wire-level fakes of external services, for tests and benchmarks.

``FakeAnthropic`` and ``FakeOpenAI`` speak the real HTTP + SSE protocols on loopback, so the
real SDK-based providers run against them unchanged; each call is scripted with a ``Script``.
"""

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.server import FakeToolCall, RecordedRequest, Script, ScriptedFake

__all__ = [
    "FakeAnthropic",
    "FakeOpenAI",
    "FakeToolCall",
    "RecordedRequest",
    "Script",
    "ScriptedFake",
]
