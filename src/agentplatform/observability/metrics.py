"""Prometheus metrics of one app, in their own ``CollectorRegistry`` (never the global one).

Names (all prefixed ``agentplatform_``)::

    http_requests_total{method,route,status}             counter
    http_request_duration_seconds{method,route,status}   histogram
    websocket_connections                                gauge   (open now)
    runs_total{status,provider}                          counter (terminal states)
    run_duration_seconds{status,provider}                histogram
    run_time_to_first_token_seconds{provider}            histogram
    model_tokens_total{provider,direction}               counter (direction: input | output)
    rate_limited_total{budget}                           counter
    db_pool_checked_out / db_pool_size                   gauges, read from the pool at scrape

plus the standard ``process_*`` and ``python_*`` families. Every label value comes from a small
closed set — a route *template*, a known provider, a terminal state — so no user, agent or
run id can ever become a label (that would also make the series count unbounded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from agentplatform.runtime.observer import RunReport

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
NAMESPACE = "agentplatform"
UNMATCHED = "unmatched"
OTHER = "other"
DEFAULT_PROVIDERS = ("anthropic", "openai", "local")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RUN_STATES = frozenset({"completed", "failed", "cancelled", "interrupted"})
_BUDGET = re.compile(r"[a-z][a-z0-9_]{0,31}")

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
RUN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class _PoolCollector:
    """Reads the database pool when Prometheus scrapes, so the numbers are never stale."""

    def __init__(self) -> None:
        self.pool: Any = None  # a SQLAlchemy pool; ``QueuePool`` has checkedout() and size()

    def collect(self) -> Iterator[Metric]:
        checked_out = GaugeMetricFamily(
            f"{NAMESPACE}_db_pool_checked_out",
            "Database connections checked out of the pool now.",
        )
        size = GaugeMetricFamily(
            f"{NAMESPACE}_db_pool_size", "Connections the database pool keeps open."
        )
        pool = self.pool
        if pool is not None:
            checked_out.add_metric([], _call_int(pool, "checkedout"))
            size.add_metric([], _call_int(pool, "size"))
        yield checked_out
        yield size


def _call_int(pool: Any, method: str) -> int:
    function = getattr(pool, method, None)
    if not callable(function):
        return 0
    value = function()
    return value if isinstance(value, int) else 0


class Metrics:
    """The app's instruments; also the Runner's ``RunObserver`` for the run families."""

    def __init__(self, providers: Iterable[str] = DEFAULT_PROVIDERS) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._providers = frozenset(providers)
        ns, reg = NAMESPACE, self.registry
        self._requests = Counter(
            "http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            namespace=ns,
            registry=reg,
        )
        self._latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (whole body).",
            ["method", "route", "status"],
            namespace=ns,
            registry=reg,
            buckets=HTTP_BUCKETS,
        )
        self._sockets = Gauge(
            "websocket_connections",
            "WebSocket connections open now.",
            namespace=ns,
            registry=reg,
        )
        self._runs = Counter(
            "runs",
            "Runs that reached a terminal state.",
            ["status", "provider"],
            namespace=ns,
            registry=reg,
        )
        self._run_duration = Histogram(
            "run_duration_seconds",
            "Time from a run's start to its terminal state.",
            ["status", "provider"],
            namespace=ns,
            registry=reg,
            buckets=RUN_BUCKETS,
        )
        self._ttft = Histogram(
            "run_time_to_first_token_seconds",
            "Time from a run's start to its first text.",
            ["provider"],
            namespace=ns,
            registry=reg,
            buckets=TTFT_BUCKETS,
        )
        self._tokens = Counter(
            "model_tokens",
            "Model tokens used, as the provider reported them.",
            ["provider", "direction"],
            namespace=ns,
            registry=reg,
        )
        self._limited = Counter(
            "rate_limited",
            "Requests or frames refused by a rate limit or quota.",
            ["budget"],
            namespace=ns,
            registry=reg,
        )
        self._pool = _PoolCollector()
        reg.register(self._pool)
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)

    # -- HTTP and WebSocket (called by the middleware) ------------------------------------

    def http_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        labels = (method if method in METHODS else OTHER, route, str(status))
        self._requests.labels(*labels).inc()
        self._latency.labels(*labels).observe(duration_s)

    def websocket_opened(self) -> None:
        self._sockets.inc()

    def websocket_closed(self) -> None:
        self._sockets.dec()

    # -- runs (the Runner's observer) -----------------------------------------------------

    def known_providers(self, names: Iterable[str]) -> None:
        """Provider names allowed as label values; any other is counted as ``other``."""
        self._providers = frozenset(names)

    def run_finished(self, report: RunReport) -> None:
        provider = report.provider if report.provider in self._providers else OTHER
        status = report.status if report.status in RUN_STATES else OTHER
        self._runs.labels(status, provider).inc()
        self._run_duration.labels(status, provider).observe(max(report.duration_s, 0.0))
        if report.ttft_s is not None:
            self._ttft.labels(provider).observe(max(report.ttft_s, 0.0))
        if report.input_tokens:
            self._tokens.labels(provider, "input").inc(report.input_tokens)
        if report.output_tokens:
            self._tokens.labels(provider, "output").inc(report.output_tokens)

    # -- the rest -------------------------------------------------------------------------

    def rate_limited(self, budget: str) -> None:
        """Count one refusal by the limit named ``budget`` (e.g. ``api_ip``, ``chat_user``)."""
        self._limited.labels(budget if _BUDGET.fullmatch(budget) else OTHER).inc()

    def watch_pool(self, pool: Any) -> None:
        """Report this SQLAlchemy pool's use at scrape time (``None`` stops reporting)."""
        self._pool.pool = pool

    def render(self) -> bytes:
        """The Prometheus text exposition format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)
