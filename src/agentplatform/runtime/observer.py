"""What the Runner tells the outside world about a run: one ``RunReport`` when it ends.

The contract is one method. ``observability`` implements it (metrics and a log line); the
runtime never imports a metrics or logging library for this, and a test can pass any object
with a ``run_finished`` method. An observer must not raise and must not block: it runs inline
at the end of every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RunReport:
    """A run that reached its terminal state in this process."""

    run_id: str
    status: str  # completed | failed | cancelled | interrupted
    provider: str  # the part of the model reference before ``:``
    model: str
    duration_s: float
    ttft_s: float | None  # time to the first text delta; None when none was produced
    input_tokens: int | None
    output_tokens: int | None
    error_code: str | None = None


class RunObserver(Protocol):
    def run_finished(self, report: RunReport) -> None: ...
