"""Prometheus metrics of the server (``GET /metrics``, text format, ``prometheus_client``).

- ``llamo_requests_total{endpoint, status}``: HTTP requests by endpoint and status code
  (``499``: the client closed the connection before the answer);
- ``llamo_request_seconds{endpoint}``: latency histogram;
- ``llamo_rows_total{endpoint, status}``: molecules answered, by row status (``ok``,
  ``invalid_smiles``, ``too_large``, ...);
- ``llamo_batch_rows``, ``llamo_batch_requests``, ``llamo_batch_seconds``: per pipeline run
  of the micro-batcher, its rows, the requests that shared it, its time;
- ``llamo_queue_depth``, ``llamo_queued_rows``, ``llamo_running_rows``,
  ``llamo_requests_in_flight``: gauges read at scrape time;
- ``llamo_model_info{model, sha256}``: 1.

Each server has a registry of its own (two servers in one process do not mix counts).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: the endpoint label of a path (anything else is "other": labels stay few)
ENDPOINTS = {
    "/v1/annotate": "annotate",
    "/v1/chat/completions": "chat_completions",
    "/v1/models": "models",
    "/health": "health",
    "/metrics": "metrics",
}
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def endpoint_label(path: str) -> str:
    if path.startswith("/v1/models/"):
        return "models"
    return ENDPOINTS.get(path, "other")


class ServeMetrics:
    """The metrics of one server, and the hooks that update them."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "llamo_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "llamo_request_seconds",
            "request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter(
            "llamo_rows", "molecules answered, by row status", ["endpoint", "status"], registry=r
        )
        self.batch_rows = Histogram(
            "llamo_batch_rows", "rows per pipeline run", buckets=ROW_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "llamo_batch_requests",
            "requests sharing a pipeline run",
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "llamo_batch_seconds", "time of a pipeline run", buckets=LATENCY_BUCKETS, registry=r
        )
        self.in_flight = Gauge("llamo_requests_in_flight", "requests being answered", registry=r)
        self.queue_depth = Gauge("llamo_queue_depth", "requests waiting for the model", registry=r)
        self.queued_rows = Gauge("llamo_queued_rows", "rows waiting for the model", registry=r)
        self.running_rows = Gauge("llamo_running_rows", "rows being decoded", registry=r)
        self.model_info = Gauge(
            "llamo_model_info", "the served model", ["model", "sha256"], registry=r
        )

    def attach(self, batcher: Any) -> None:
        """Read the batcher's queue at scrape time and count its batches."""
        self.queue_depth.set_function(lambda: batcher.queue_depth)
        self.queued_rows.set_function(lambda: batcher.queued_rows)
        self.running_rows.set_function(lambda: batcher.running_rows)
        batcher.on_batch = self.on_batch

    def on_batch(self, rows: int, jobs: int, seconds: float) -> None:
        self.batch_rows.observe(rows)
        self.batch_requests.observe(jobs)
        self.batch_seconds.observe(seconds)

    def count_rows(self, endpoint: str, statuses: dict[str, int]) -> None:
        for status, n in statuses.items():
            self.rows.labels(endpoint, status).inc(n)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request by endpoint and final status, with its
    latency (a request whose client left before the response counts as ``499``)."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = endpoint_label(scope.get("path", ""))
        status = {"code": 499}

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
