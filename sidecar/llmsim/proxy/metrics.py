"""The proxy's own Prometheus metrics (served on the admin port, next to the simulator's telemetry).

Only what is proxy-specific: why requests got their mode, tunnels, profile reloads, the fail-open
path and the kill switch. Request counts and latencies of every mode are the telemetry's
`llmsim_*` metrics (`docs/telemetry.md`), labelled with `mode`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "llmsim_proxy_decisions", "Why each request got its mode (profile, header, paused, expired, ...)",
            ["mode", "reason"], registry=r,
        )  # fmt: skip
        self.tunnels = Counter(
            "llmsim_proxy_tunnels", "Connections tunnelled untouched (not LLM hosts)", registry=r
        )
        self.reloads = Counter(
            "llmsim_proxy_profile_reloads", "Profile reloads by result", ["result"], registry=r
        )
        self.failopen = Counter(
            "llmsim_proxy_fail_open", "Requests answered by the fail-open path after an internal error",
            ["mode"], registry=r,
        )  # fmt: skip
        self.paused = Gauge("llmsim_proxy_paused", "1 while the kill switch is engaged", registry=r)
