"""Prometheus metrics of a load run (`llmsim load --metrics HOST:PORT`), scraped while it runs.

The latency histograms use the same bucket boundaries as `llmsim serve` and the sidecar
(`llmsim.telemetry.buckets`), so the load generator's quantiles and the server's are computed on
the same grid and can be put side by side. Latencies are measured from the actual send time, like
the report's `latency` section. Labels: `provider` and `model` of the target (one of each per
run), `outcome` (`ok` or the report's error type) and `direction` for tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from llmsim.loadgen.results import RequestRecord
from llmsim.loadgen.scheduler import LiveStats
from llmsim.telemetry import labels
from llmsim.telemetry.buckets import LatencyBuckets
from llmsim.telemetry.prometheus import observe_many

OK = "ok"


class LoadMetrics:
    """The `llmsim_load_*` families on a registry of their own."""

    def __init__(
        self,
        provider: str,
        model: str,
        registry: CollectorRegistry | None = None,
        buckets: LatencyBuckets | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        b = buckets if buckets is not None else LatencyBuckets.from_env()
        r = self.registry
        target = ("provider", "model")
        self._target = (labels.provider_label(provider), labels.normalise_model(model) or labels.OTHER)
        self.ttft = Histogram(
            "llmsim_load_ttft_seconds", "Send to first output token, as the load generator measured it.",
            target, buckets=b.ttft, registry=r,
        )  # fmt: skip
        self.itl = Histogram(
            "llmsim_load_itl_seconds", "Gaps between consecutive content events received.",
            target, buckets=b.itl, registry=r,
        )  # fmt: skip
        self.e2e = Histogram(
            "llmsim_load_e2e_seconds", "Send to the end of the answer (successful requests).",
            target, buckets=b.e2e, registry=r,
        )  # fmt: skip
        self.requests = Counter(
            "llmsim_load_requests", "Requests finished, by outcome (ok or the error type).",
            (*target, "outcome"), registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "llmsim_load_tokens", "Tokens sent (input: prompt) and received (output).",
            (*target, "direction"), registry=r,
        )  # fmt: skip
        self.requests.labels(*self._target, OK)
        for direction in ("input", "output"):
            self.tokens.labels(*self._target, direction)
        self._live: LiveStats | None = None

    def attach(self, live: LiveStats) -> None:
        """Export the run's progress (in flight, scheduled, elapsed) from `live` at scrape time."""
        if self._live is None:
            self.registry.register(_ProgressCollector(live, self._target))
        self._live = live

    def observe(self, rec: RequestRecord) -> None:
        """Count one finished request (called by the runner; never raises into it)."""
        target = self._target
        self.requests.labels(*target, OK if rec.error is None else rec.error.value).inc()
        self.tokens.labels(*target, "input").inc(rec.prompt_tokens)
        self.tokens.labels(*target, "output").inc(rec.output_tokens)
        if rec.error is not None:
            return
        if rec.ttft_s is not None:
            self.ttft.labels(*target).observe(rec.ttft_s)
        if rec.itl_s:
            observe_many(self.itl.labels(*target), rec.itl_s)
        if rec.end_s is not None:
            self.e2e.labels(*target).observe(max(0.0, rec.end_s - rec.sent_s))


class _ProgressCollector:
    def __init__(self, live: LiveStats, target: tuple[str, str]) -> None:
        self._live = live
        self._target = target

    def collect(self) -> Iterator[Metric]:
        live, names = self._live, ["provider", "model"]
        for name, doc, value in (
            ("llmsim_load_in_flight", "Requests sent and not finished yet.", live.in_flight),
            ("llmsim_load_scheduled_requests", "Requests this worker's schedule holds.", live.scheduled),
            ("llmsim_load_elapsed_seconds", "Time since the schedule started.", live.elapsed_s),
            ("llmsim_load_duration_seconds", "Planned length of the run.", live.duration_s),
        ):
            family = GaugeMetricFamily(name, doc, labels=names)
            family.add_metric(list(self._target), float(value))
            yield family


class MetricsEndpoint:
    """`/metrics` of a registry on HOST:PORT, served from a thread (the run's event loop never
    handles a scrape)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        server, thread = start_http_server(port, host, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.address: tuple[str, int] = (host, int(server.server_address[1]))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
