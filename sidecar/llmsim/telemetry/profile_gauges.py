"""What the active profile is configured to do, as gauges next to what was measured.

Dashboards and alerts compare the measured quantiles and fault ratios with these: the configured
TTFT/ITL quantiles (of the profile's distributions for a small prompt on an idle server, i.e.
before the prefill cost and the capacity model's slowdown), the configured fault rates and which
fault windows are open now. Only the active profile is exported (the one requests without
`x-llmsim-profile` get: the default profile of `llmsim serve`, the loaded profile of a sidecar), so
the series count is a few dozen per process whatever the number of presets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from llmsim.api import schedule
from llmsim.api.distributions import Distribution
from llmsim.api.profile import SimulationProfileSpec
from llmsim.simulation import sampling

QUANTILES = (0.5, 0.95, 0.99)
"""The configured quantiles exported (the ones the recording rules compute from the histograms)."""


@dataclass(frozen=True)
class ActiveProfile:
    name: str
    spec: SimulationProfileSpec
    elapsed_s: float | None = None
    """Seconds since the profile became active (relative fault windows count from it); None before that."""
    now_unix: float | None = None
    """Unix time now (windows with `startAt` or `cron`); None: those are reported closed."""


def latency_quantiles(spec: SimulationProfileSpec) -> dict[tuple[str, float], float]:
    """(`ttft` | `itl`, q) -> configured value in seconds."""
    latency = spec.latency
    out: dict[tuple[str, float], float] = {}
    for q in QUANTILES:
        out["ttft", q] = sampling.quantile_of(latency.ttft_ms, q) / 1000
        out["itl", q] = _itl_quantile(latency.itl_ms, latency.tokens_per_second, q)
    return out


def _itl_quantile(itl_ms: Distribution, tokens_per_second: Distribution | None, q: float) -> float:
    if tokens_per_second is None:
        return sampling.quantile_of(itl_ms, q) / 1000
    # ITL = 1 / speed is decreasing in the speed: its q-quantile is at the speed's (1 - q)-quantile.
    return 1 / max(sampling.quantile_of(tokens_per_second, 1 - q), 1e-9)


class ProfileCollector:
    """`llmsim_profile_*` gauges of the profile `source()` returns (nothing when it returns None)."""

    def __init__(self, source: Callable[[], ActiveProfile | None]) -> None:
        self._source = source
        self._cache: tuple[SimulationProfileSpec, dict[tuple[str, float], float]] | None = None

    def _quantiles(self, spec: SimulationProfileSpec) -> dict[tuple[str, float], float]:
        if self._cache is None or self._cache[0] is not spec:  # gamma quantiles cost a sample
            self._cache = (spec, latency_quantiles(spec))
        return self._cache[1]

    def collect(self) -> Iterator[Metric]:
        active = self._source()
        if active is None:
            return
        spec, name = active.spec, active.name
        info = GaugeMetricFamily(
            "llmsim_profile_info",
            "The active profile (value 1), its mode and provider.",
            labels=["profile", "mode", "provider"],
        )
        info.add_metric([name, spec.mode.value, spec.provider.value], 1.0)
        yield info
        latency = GaugeMetricFamily(
            "llmsim_profile_latency_seconds",
            "Configured latency quantile of the active profile (metric: ttft, itl), before prefill "
            "cost and capacity slowdown.",
            labels=["profile", "metric", "quantile"],
        )
        for (metric, q), value in sorted(self._quantiles(spec).items()):
            latency.add_metric([name, metric, str(q)], value)
        yield latency
        rates = GaugeMetricFamily(
            "llmsim_profile_fault_rate",
            "Configured probability per request of each fault type (`faults.rates`).",
            labels=["profile", "fault"],
        )
        for fault, p in sorted(spec.faults.rates.items()):
            rates.add_metric([name, fault.value], p)
        yield rates
        windows = GaugeMetricFamily(
            "llmsim_profile_fault_window_open",
            "1 while a fault window of the active profile is open (its probability applies), by fault.",
            labels=["profile", "fault"],
        )
        is_open: dict[str, bool] = {}
        for window in spec.faults.windows:
            if schedule.is_absolute(window):
                now_open = active.now_unix is not None and schedule.is_open(
                    window, elapsed_s=0.0, now_unix=active.now_unix
                )
            else:
                now_open = active.elapsed_s is not None and schedule.is_open(
                    window, elapsed_s=active.elapsed_s, now_unix=0.0
                )
            is_open[window.fault.value] = is_open.get(window.fault.value, False) or now_open
        for fault_name, value in sorted(is_open.items()):
            windows.add_metric([name, fault_name], 1.0 if value else 0.0)
        yield windows
