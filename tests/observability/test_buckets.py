"""Bucket boundaries: chosen for LLM latencies, configurable, the same in serve, proxy and load."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import yaml
from promenv import REPO
from prometheus_client import CollectorRegistry, Histogram

from llmsim.errors import LLMSimError
from llmsim.loadgen.metrics import LoadMetrics
from llmsim.profiles import ProfileRegistry, default_profile
from llmsim.telemetry import buckets
from llmsim.telemetry.buckets import LatencyBuckets
from llmsim.telemetry.facade import Telemetry
from llmsim.telemetry.prometheus import PromMetrics


def upper_bounds(histogram: Histogram) -> list[float]:
    """Bucket boundaries of a histogram family, from its exposition (`le` of a fresh child)."""
    child = histogram.labels(*["x"] * len(histogram._labelnames))
    return [float(b) for b in child._upper_bounds]


def widest_relative_step(bounds: tuple[float, ...], low: float, high: float) -> float:
    return max(b / a for a, b in itertools.pairwise(bounds) if a >= low and b <= high)


def test_ttft_buckets_span_tens_of_ms_to_tens_of_s_and_are_dense_where_ttft_lives() -> None:
    b = buckets.TTFT_BUCKETS_S
    assert b[0] == 0.01 and b[-1] == 60.0
    # quantile estimates interpolate inside one bucket: at most a third off between 200 ms and 5 s
    assert widest_relative_step(b, 0.2, 5.0) <= 4 / 3 + 1e-9
    assert widest_relative_step(b, 0.05, 20.0) <= 1.5 + 1e-9


def test_itl_buckets_span_ms_to_hundreds_of_ms_and_are_dense_where_decode_speeds_live() -> None:
    b = buckets.ITL_BUCKETS_S
    assert b[0] == 0.001 and 0.5 <= b[-1] <= 10
    assert widest_relative_step(b, 0.01, 0.1) <= 4 / 3 + 1e-9


def test_e2e_buckets_reach_long_generations() -> None:
    assert buckets.E2E_BUCKETS_S[0] <= 0.1 and buckets.E2E_BUCKETS_S[-1] >= 300
    assert widest_relative_step(buckets.E2E_BUCKETS_S, 1.0, 120.0) <= 1.5 + 1e-9


def test_serve_proxy_and_load_generator_use_the_same_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSIM_TTFT_BUCKETS_S", "0.1, 0.2,0.5,1,2")
    monkeypatch.setenv("LLMSIM_ITL_BUCKETS_S", "0.01,0.02,0.05")
    serve = PromMetrics(CollectorRegistry())
    # The proxy reports every request's latency through the same telemetry as serve (its own
    # ProxyMetrics hold no latency series); build it the way `llmsim proxy` does.
    proxy = Telemetry.for_registry(ProfileRegistry(default_profile())).prometheus
    load = LoadMetrics("openai", "gpt-4o", CollectorRegistry())
    ttft = [0.1, 0.2, 0.5, 1.0, 2.0, float("inf")]
    itl = [0.01, 0.02, 0.05, float("inf")]
    e2e = [*buckets.E2E_BUCKETS_S, float("inf")]
    for family in (serve.ttft, proxy.ttft, load.ttft):
        assert upper_bounds(family) == ttft
    for family in (serve.itl, proxy.itl, load.itl):
        assert upper_bounds(family) == itl
    for family in (serve.e2e, proxy.e2e, load.e2e):
        assert upper_bounds(family) == e2e


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.1,abc", "LLMSIM_TTFT_BUCKETS_S: not a comma-separated list of numbers"),
        ("0.5,0.2", "LLMSIM_TTFT_BUCKETS_S: boundaries must increase: 0.2 follows 0.5"),
        ("0.1", "LLMSIM_TTFT_BUCKETS_S: give at least two boundaries"),
        ("0,1", "LLMSIM_TTFT_BUCKETS_S: boundary 0 must be a positive number of seconds"),
        ("1,inf", "LLMSIM_TTFT_BUCKETS_S: boundary inf must be a positive number of seconds"),
        (",".join(str(i) for i in range(1, 62)), "LLMSIM_TTFT_BUCKETS_S: at most 60 boundaries, got 61"),
    ],
)
def test_bad_boundaries_are_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("LLMSIM_TTFT_BUCKETS_S", value)
    with pytest.raises(LLMSimError) as exc:
        LatencyBuckets.from_env()
    assert str(exc.value).startswith(message)


def test_llmsim_serve_refuses_bad_boundaries_with_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmsim.cli.main", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LLMSIM_ITL_BUCKETS_S": "0.05,0.01"},
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "llmsim: LLMSIM_ITL_BUCKETS_S: boundaries must increase: 0.01 follows 0.05"


def test_the_default_ttft_slo_threshold_is_a_ttft_bucket_boundary() -> None:
    values = yaml.safe_load((REPO / "charts/llmsim/values.yaml").read_text(encoding="utf-8"))
    threshold = values["prometheusRule"]["slo"]["ttft"]["thresholdSeconds"]
    assert float(threshold) in buckets.TTFT_BUCKETS_S
    rules = (REPO / "charts/llmsim/files/prometheus/llmsim-slo-rules.yaml").read_text(encoding="utf-8")
    assert f'le="{float(threshold)!r}"' in rules  # prometheus_client writes 2.0, not 2
