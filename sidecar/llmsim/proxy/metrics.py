"""Prometheus metrics of the proxy (served on the admin port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60)
_ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2)


class ProxyMetrics:
    """Counters and histograms labelled by mode (`simulate`, `perturb`, `passthrough`) and provider."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llmsim_proxy_requests", "Intercepted requests by mode, provider and outcome",
            ["mode", "provider", "outcome"], registry=r,
        )  # fmt: skip
        self.decisions = Counter(
            "llmsim_proxy_decisions", "Why each request got its mode (profile, header, paused, expired, ...)",
            ["mode", "reason"], registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "llmsim_proxy_ttft_seconds", "Time to first body byte/event as the client sees it",
            ["mode", "provider"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.itl = Histogram(
            "llmsim_proxy_itl_seconds", "Gap between consecutive stream events forwarded to the client",
            ["mode", "provider"], buckets=_ITL_BUCKETS, registry=r,
        )  # fmt: skip
        self.e2e = Histogram(
            "llmsim_proxy_e2e_seconds", "Request start to last byte", ["mode", "provider"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tunnels = Counter(
            "llmsim_proxy_tunnels", "Connections tunnelled untouched (not LLM hosts)", registry=r
        )
        self.open_connections = Gauge("llmsim_proxy_open_connections", "Client connections open", registry=r)
        self.reloads = Counter(
            "llmsim_proxy_profile_reloads", "Profile reloads by result", ["result"], registry=r
        )
        self.failopen = Counter(
            "llmsim_proxy_fail_open", "Requests answered by the fail-open path after an internal error",
            ["mode"], registry=r,
        )  # fmt: skip
        self.paused = Gauge("llmsim_proxy_paused", "1 while the kill switch is engaged", registry=r)
