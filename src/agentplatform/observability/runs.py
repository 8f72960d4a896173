"""The Runner's observer: each finished run moves the run metrics and writes one log line."""

from __future__ import annotations

from agentplatform.observability.logging import log_run
from agentplatform.observability.metrics import Metrics
from agentplatform.runtime.observer import RunReport


class RunTelemetry:
    """Implements ``runtime.observer.RunObserver``."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def run_finished(self, report: RunReport) -> None:
        self.metrics.run_finished(report)
        log_run(report)
