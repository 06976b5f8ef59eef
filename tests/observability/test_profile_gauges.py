"""`llmsim_profile_*` (what the active profile configures) and the proxy's profile-state gauges."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.state import ProxyState
from llmsim.telemetry.profile_gauges import ActiveProfile, ProfileCollector
from simserver import SimServer, profile_from

DRILL: dict[str, Any] = {
    "latency": {
        "ttftMs": {"type": "lognormal", "median": 300, "sigma": 0.3},
        "tokensPerSecond": {"type": "uniform", "low": 40, "high": 60},
    },
    "faults": {
        "rates": {"rate_limit": 0.05, "overloaded": 0.01},
        "windows": [
            {"fault": "server_error", "startS": 10, "durationS": 5},
            {"fault": "server_error", "startS": 30, "durationS": 5},
            {"fault": "disconnect", "startS": 0, "durationS": 100, "everyS": 200},
        ],
    },
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def collect(active: ActiveProfile | None) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(ProfileCollector(lambda: active))
    return samples(generate_latest(registry).decode())


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_configured_quantiles_rates_and_open_windows_of_the_active_profile() -> None:
    spec = profile_from(DRILL, "drill").spec
    got = collect(ActiveProfile("drill", spec, elapsed_s=12.0))
    p95 = 0.3 * math.exp(0.3 * 1.6448536269514722)
    assert math.isclose(
        got[key("llmsim_profile_latency_seconds", profile="drill", metric="ttft", quantile="0.95")], p95
    )
    # ITL from a decode speed: the slow end of the speed is the tail of the gaps
    itl_p95 = got[key("llmsim_profile_latency_seconds", profile="drill", metric="itl", quantile="0.95")]
    assert math.isclose(itl_p95, 1 / (40 + 0.05 * 20))
    assert got[key("llmsim_profile_fault_rate", profile="drill", fault="rate_limit")] == 0.05
    assert got[key("llmsim_profile_fault_rate", profile="drill", fault="overloaded")] == 0.01
    assert got[key("llmsim_profile_fault_window_open", profile="drill", fault="server_error")] == 1.0
    assert got[key("llmsim_profile_fault_window_open", profile="drill", fault="disconnect")] == 1.0
    assert got[key("llmsim_profile_info", profile="drill", mode="simulate", provider="any")] == 1.0
    later = collect(ActiveProfile("drill", spec, elapsed_s=120.0))
    assert later[key("llmsim_profile_fault_window_open", profile="drill", fault="server_error")] == 0.0
    assert later[key("llmsim_profile_fault_window_open", profile="drill", fault="disconnect")] == 0.0
    before_first_request = collect(ActiveProfile("drill", spec, elapsed_s=None))
    assert (
        before_first_request[key("llmsim_profile_fault_window_open", profile="drill", fault="disconnect")]
        == 0
    )


def test_a_wall_clock_window_is_open_by_the_wall_clock_before_any_request() -> None:
    doc = {"faults": {"windows": [{"fault": "timeout", "startAt": "2026-03-02T14:00:00Z", "durationS": 60}]}}
    spec = profile_from(doc, "drill").spec
    opens = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC).timestamp()
    window = key("llmsim_profile_fault_window_open", profile="drill", fault="timeout")
    assert collect(ActiveProfile("drill", spec, elapsed_s=None, now_unix=opens + 30))[window] == 1.0
    assert collect(ActiveProfile("drill", spec, elapsed_s=30.0, now_unix=opens + 60))[window] == 0.0


def test_nothing_is_exported_without_an_active_profile() -> None:
    assert collect(None) == {}


def test_serve_exports_its_default_profile_and_counts_windows_from_its_first_request() -> None:
    from llmsim.profiles import ProfileRegistry
    from llmsim.server.app import create_app

    server = SimServer(create_app(ProfileRegistry(profile_from(DRILL, "drill")))).start()
    try:
        first = samples(httpx.get(server.url + "/metrics").text)
        httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
            headers={"authorization": "Bearer x", "x-llmsim-fault": "none"},
        )
        second = samples(httpx.get(server.url + "/metrics").text)
    finally:
        server.stop()
    window = key("llmsim_profile_fault_window_open", profile="drill", fault="disconnect")
    assert first[window] == 0.0 and second[window] == 1.0  # open from 0 s after activation
    assert second[key("llmsim_profile_fault_rate", profile="drill", fault="rate_limit")] == 0.05


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def proxy_samples(metrics: ProxyMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return samples(generate_latest(metrics.registry).decode())


def test_the_proxy_exports_expiry_activation_and_whether_it_perturbs() -> None:
    clock = Clock()
    spec = {**DRILL, "mode": "perturb", "durationS": 3000, "until": "2026-01-01T13:00:00Z"}
    state = ProxyState(profile_from(spec, "drill"), clock=clock)
    metrics = ProxyMetrics(CollectorRegistry())
    metrics.bind(state)
    got = proxy_samples(metrics)
    start = clock.now.timestamp()
    assert got[key("llmsim_proxy_profile_activated_timestamp_seconds")] == start
    assert got[key("llmsim_proxy_profile_expiry_timestamp_seconds")] == start + 3000  # before `until`
    assert got[key("llmsim_proxy_perturbing")] == 1.0
    assert got[key("llmsim_proxy_paused")] == 0.0
    clock.now += dt.timedelta(seconds=3000)
    assert proxy_samples(metrics)[key("llmsim_proxy_perturbing")] == 0.0  # expired
    state.resume()  # restarts the activation clock
    got = proxy_samples(metrics)
    assert got[key("llmsim_proxy_perturbing")] == 1.0
    assert (
        got[key("llmsim_proxy_profile_expiry_timestamp_seconds")]
        == dt.datetime(2026, 1, 1, 13, 0, tzinfo=dt.UTC).timestamp()
    )  # now `until` comes first
    state.pause()
    got = proxy_samples(metrics)
    assert got[key("llmsim_proxy_paused")] == 1.0 and got[key("llmsim_proxy_perturbing")] == 0.0


def test_the_profiles_own_kill_switch_counts_as_paused_and_passthrough_does_not_perturb() -> None:
    state = ProxyState(profile_from({"paused": True}, "off"), clock=Clock())
    metrics = ProxyMetrics(CollectorRegistry())
    metrics.bind(state)
    got = proxy_samples(metrics)
    assert got[key("llmsim_proxy_paused")] == 1.0 and got[key("llmsim_proxy_perturbing")] == 0.0
    assert not [k for k in got if k[0] == "llmsim_proxy_profile_expiry_timestamp_seconds"]
    state.install(profile_from({"mode": "passthrough"}, "watch"))
    got = proxy_samples(metrics)
    assert got[key("llmsim_proxy_paused")] == 0.0 and got[key("llmsim_proxy_perturbing")] == 0.0


def test_fail_open_counters_exist_at_zero_before_the_first_failure() -> None:
    got = proxy_samples(ProxyMetrics(CollectorRegistry()))
    assert got[key("llmsim_proxy_fail_open_total", mode="simulate")] == 0.0
    assert got[key("llmsim_proxy_fail_open_total", mode="perturb")] == 0.0
