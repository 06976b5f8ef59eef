"""`llmsim load --metrics HOST:PORT`: the run's own Prometheus metrics, counted like its report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from llmsim.loadgen.metrics import LoadMetrics
from llmsim.loadgen.results import RequestRecord
from llmsim.loadgen.scheduler import LiveStats
from llmsim.loadgen.wire import ErrorType
from llmsim.profiles import ProfileRegistry
from llmsim.server.app import create_app
from simserver import SimServer, profile_from


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


TARGET = {"provider": "openai", "model": "gpt-4o"}


def k(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({**TARGET, **labels}.items())


def test_records_become_counts_and_latency_observations() -> None:
    metrics = LoadMetrics("openai", "gpt-4o", CollectorRegistry())
    live = LiveStats(scheduled=3, in_flight=1, elapsed_s=2.5, duration_s=10)
    metrics.attach(live)
    ok = RequestRecord(index=0, intended_s=0, sent_s=1.0, stream=True, prompt_tokens=20, output_tokens=3,
                       ttft_s=0.3, itl_s=[0.02, 0.03], end_s=1.4)  # fmt: skip
    failed = RequestRecord(index=1, intended_s=0, sent_s=1.0, stream=True, prompt_tokens=10,
                           error=ErrorType.RATE_LIMIT, end_s=1.1, status=429)  # fmt: skip
    metrics.observe(ok)
    metrics.observe(failed)
    got = values(generate_latest(metrics.registry).decode())
    assert got[k("llmsim_load_requests_total", outcome="ok")] == 1
    assert got[k("llmsim_load_requests_total", outcome="rate_limit")] == 1
    assert got[k("llmsim_load_tokens_total", direction="input")] == 30
    assert got[k("llmsim_load_tokens_total", direction="output")] == 3
    assert got[k("llmsim_load_ttft_seconds_count")] == 1 and got[k("llmsim_load_ttft_seconds_sum")] == 0.3
    assert got[k("llmsim_load_itl_seconds_count")] == 2
    assert got[k("llmsim_load_e2e_seconds_count")] == 1  # failures have no latency
    assert got[k("llmsim_load_e2e_seconds_sum")] == pytest.approx(0.4)
    assert got[k("llmsim_load_in_flight")] == 1 and got[k("llmsim_load_scheduled_requests")] == 3
    assert got[k("llmsim_load_elapsed_seconds")] == 2.5 and got[k("llmsim_load_duration_seconds")] == 10


def test_a_model_name_that_is_no_name_gets_no_series_of_its_own() -> None:
    metrics = LoadMetrics("openai", "say hello", CollectorRegistry())
    got = values(generate_latest(metrics.registry).decode())
    assert {dict(labels)["model"] for _, labels in got} == {"other"}


@pytest.mark.slow
def test_the_command_serves_metrics_that_agree_with_its_report(tmp_path: Path) -> None:
    profile = {
        "seed": 3,
        "latency": {
            "ttftMs": {"type": "constant", "value": 30},
            "itlMs": {"type": "constant", "value": 2},
            "outputTokens": {"type": "constant", "value": 5},
        },
    }
    server = SimServer(create_app(ProfileRegistry(profile_from(profile)))).start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmsim.cli.main", "load", "--target", server.url, "--model", "gpt-4o",
             "--duration", "2", "--rps", "10", "--seed", "1", "--out", str(tmp_path), "--no-html", "--quiet",
             "--metrics", "127.0.0.1:0", "--metrics-linger", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            match = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", line)
            assert match, line
            deadline = time.monotonic() + 30
            while not (tmp_path / "report.json").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.2)
            scraped = values(httpx.get(match[1], timeout=5).text)  # during the linger
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        server.stop()
    report = json.loads((tmp_path / "report.json").read_text())
    requests = sum(v for (name, _), v in scraped.items() if name == "llmsim_load_requests_total")
    assert requests == report["summary"]["requests"] > 0
    assert scraped[k("llmsim_load_ttft_seconds_count")] == report["histograms"]["latency"]["ttft_ms"]["count"]
    assert scraped[k("llmsim_load_ttft_seconds_bucket", le="0.025")] == 0  # 30 ms TTFT plus the loopback
    assert scraped[k("llmsim_load_ttft_seconds_bucket", le="0.1")] == report["summary"]["requests"]
