"""The proxy's own Prometheus metrics (served on the admin port, next to the simulator's telemetry).

Only what is proxy-specific: why requests got their mode, tunnels, profile reloads, the fail-open
path, the kill switch and the active profile's state. Request counts and latencies of every mode
are the telemetry's `llmsim_*` metrics (`docs/telemetry.md`), labelled with `mode`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric

from llmsim.api.profile import Mode
from llmsim.proxy import safety
from llmsim.proxy.state import ProxyState

FAIL_OPEN_MODES = (Mode.SIMULATE.value, Mode.PERTURB.value)
"""The modes whose internal errors are answered by the fail-open path."""


class ProxyMetrics:
    """The proxy-specific counters and gauges."""

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
        for mode in FAIL_OPEN_MODES:  # exported as 0 from the start, so that rate() and alerts see them
            self.failopen.labels(mode)
        self.paused = Gauge("llmsim_proxy_paused", "1 while the kill switch is engaged", registry=r)
        self.control_actions = Counter(
            "llmsim_control_actions",
            "Changes of what applies to live traffic, by action (paused, resumed, reset, failsafe, "
            "recovered, installed, expired, window_opened, window_closed) and source (admin-api, "
            "profile, kill-switch, watch, file, schedule)",
            ["action", "source"], registry=r,
        )  # fmt: skip
        self.admin_refusals = Counter(
            "llmsim_proxy_admin_refusals", "Admin control calls refused for want of the admin token",
            ["reason"], registry=r,
        )  # fmt: skip

    def bind(self, state: ProxyState) -> None:
        """Export the state of the active profile at scrape time: `llmsim_proxy_paused` then also
        counts the profile's own `paused: true` (the operator's kill switch), and
        `ProfileStateCollector`'s gauges appear."""
        self.paused.set_function(lambda: 1.0 if state.paused or state.profile.spec.paused else 0.0)
        self.registry.register(ProfileStateCollector(state))


def expiry_of(state: ProxyState) -> dt.datetime | None:
    """When the active profile stops applying: `until`, or `durationS` after activation (the earlier)."""
    spec = state.profile.spec
    candidates = [t for t in (spec.until,) if t is not None]
    if spec.duration_s is not None:
        candidates.append(state.activated_at + dt.timedelta(seconds=spec.duration_s))
    return min(candidates) if candidates else None


def perturbing(state: ProxyState, now: dt.datetime) -> bool:
    """Whether requests without a mode header are simulated or perturbed right now (the profile is
    not passthrough, not paused, not expired, not failed safe); match rules and `percentage` still
    narrow it."""
    spec = state.profile.spec
    mode = state.mode_override or spec.mode
    if mode is Mode.PASSTHROUGH or state.paused or spec.paused or state.failsafe is not None:
        return False
    return not safety.expired(spec, state.activated_at, now)


class ProfileStateCollector:
    """Gauges read from `ProxyState` at scrape time (one sidecar has one active profile)."""

    def __init__(self, state: ProxyState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        now = state.clock()
        yield GaugeMetricFamily(
            "llmsim_proxy_perturbing",
            "1 while the active profile simulates or perturbs traffic (not passthrough, paused or expired).",
            value=1.0 if perturbing(state, now) else 0.0,
        )
        yield GaugeMetricFamily(
            "llmsim_proxy_profile_activated_timestamp_seconds",
            "Unix time the active profile became active (load, reload or resume).",
            value=state.activated_at.timestamp(),
        )
        expiry = expiry_of(state)
        family = GaugeMetricFamily(
            "llmsim_proxy_profile_expiry_timestamp_seconds",
            "Unix time the active profile stops applying (`until`, or `durationS` after activation); "
            "absent when it has no expiry.",
        )
        if expiry is not None:
            family.add_metric([], expiry.timestamp())
        yield family
