"""The observability kit in a real Prometheus.

A Prometheus built from the Prometheus Go module (1 s scrape and rule evaluation) scrapes a running
`llmsim serve`, a running `llmsim proxy` and two `llmsim load --metrics` runs against them (10 s,
about 12 requests/s each), evaluates the chart's recording rules and alerts, and the test reads
the results through the HTTP API:

* the p95 TTFT the rules compute is within histogram-resolution tolerance of the profile's
  configured p95 and of the load generator's measured p95;
* every dashboard's variables, panel queries and annotations return data, as Grafana would ask
  for them (range queries over the test's time range, every variable on `All`);
* every rule evaluates without error and no alert fires on healthy traffic;
* a flood of made-up model names leaves the series count bounded.

The tolerance, derived: a classic histogram estimates a quantile by linear interpolation inside
the bucket that holds the rank, and that is the bucket holding the sample quantile, so the
estimate lies in the bucket of the sample p95. The sample p95 of n draws is off the reference by a
normal error of standard deviation sqrt(q (1 - q) / n) / f(x_q) (f: the density at the quantile);
four of those bound it (a failure rate of 6e-5). So the estimate must lie between the lower edge
of the bucket holding `reference - 4 sd` and the upper edge of the bucket holding
`reference + 4 sd (+ the measured mean lateness of the server, or client overhead)`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from promenv import (
    DASHBOARDS,
    VARIABLE_DEFAULTS,
    Prometheus,
    expand,
    finite,
    free_port,
    require_binaries,
    running_prometheus,
)

from llmsim.telemetry.buckets import TTFT_BUCKETS_S

pytestmark = pytest.mark.slow

NAMESPACE = "llmsim-test"
LOAD_S = 10
RPS = 12
MODEL_LIMIT = 3
SERVE_TTFT = {"type": "lognormal", "median": 300, "sigma": 0.3}
SERVE_PROFILE = {
    "seed": 11,
    "latency": {
        "ttftMs": SERVE_TTFT,
        "itlMs": {"type": "lognormal", "median": 15, "sigma": 0.25},
        "outputTokens": {"type": "constant", "value": 16},
    },
    "faults": {"rates": {"rate_limit": 0.05}},
}
PROXY_PROFILE = {
    "seed": 12,
    "mode": "simulate",
    "durationS": 3600,
    "latency": {
        "ttftMs": {"type": "lognormal", "median": 200, "sigma": 0.3},
        "itlMs": {"type": "lognormal", "median": 10, "sigma": 0.25},
        "outputTokens": {"type": "constant", "value": 12},
    },
    "faults": {
        "rates": {"overloaded": 0.03},
        "windows": [{"fault": "server_error", "startS": 0, "durationS": 3600, "probability": 0.03}],
    },
}


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    name: str
    log: Path
    """stderr goes to a file: a pipe nobody reads would fill up and block the process."""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start(name: str, log: Path, *args: str, env: dict[str, str] | None = None) -> Process:
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmsim.cli.main", *args],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    return Process(proc, name, log)


def wait_ready(url: str, process: Process, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise AssertionError(f"{process.name} exited: {process.output()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{process.name}: {url} not ready within {timeout_s} s")


def read_line(process: Process, pattern: str, timeout_s: float = 30) -> re.Match[str]:
    """The first line of the process's stderr matching `pattern` (waiting for it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if match := re.search(pattern, process.output()):
            return match
        if process.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{process.name}: no line matching {pattern!r} in {process.output()!r}")


async def send(url: str, models: list[str]) -> None:
    """One streamed chat request (openai format) per model name, all at once."""
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(model: str) -> None:
            body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            async with client.stream(
                "POST", url + "/v1/chat/completions", json=body,
                headers={"authorization": "Bearer sk-test", "x-request-id": uuid.uuid4().hex},
            ) as resp:  # fmt: skip
                await resp.aread()

        await asyncio.gather(*(one(m) for m in models))


@dataclass
class Run:
    prom: Prometheus
    started: float
    ended: float
    serve_report: dict[str, Any]
    proxy_report: dict[str, Any]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_binaries()
    tmp = tmp_path_factory.mktemp("observability")
    (tmp / "serve.yaml").write_text(yaml.safe_dump(SERVE_PROFILE), encoding="utf-8")
    proxy_profile = tmp / "proxy.yaml"
    proxy_profile.write_text(yaml.safe_dump(PROXY_PROFILE), encoding="utf-8")
    port = free_port()
    processes: list[Process] = []
    try:
        serve = start(
            "llmsim serve", tmp / "serve.log",
            "serve", "--profile", str(tmp / "serve.yaml"), "--port", str(port),
            env={"LLMSIM_MODEL_LABEL_LIMIT": str(MODEL_LIMIT)},
        )  # fmt: skip
        processes.append(serve)
        proxy = start(
            "llmsim proxy", tmp / "proxy.log",
            "proxy", "--profile", str(proxy_profile), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--ca-dir", str(tmp / "ca"),
        )  # fmt: skip
        processes.append(proxy)
        match = read_line(proxy, r"llmsim proxy on 127\.0\.0\.1:(\d+) \(admin \('127\.0\.0\.1', (\d+)\)")
        proxy_port, admin_port = int(match[1]), int(match[2])
        serve_url, proxy_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{proxy_port}"
        wait_ready(serve_url + "/readyz", serve)
        wait_ready(f"http://127.0.0.1:{admin_port}/readyz", proxy)
        # Series exist before the first scrape (rate() then extrapolates every bucket alike), and a
        # flood of made-up model names tries to blow up the label set.
        asyncio.run(
            send(serve_url, ["gpt-4o"] * 10 + [f"flood-{i}-{uuid.uuid4().hex[:8]}" for i in range(40)])
        )
        asyncio.run(send(proxy_url, ["gpt-4o-mini"] * 10))
        with running_prometheus("1s") as prom:
            prom.add_target(f"127.0.0.1:{port}", namespace=NAMESPACE, pod="serve-0")
            prom.add_target(f"127.0.0.1:{admin_port}", namespace=NAMESPACE, pod="app-0")
            prom.wait_for('count(up{job="llmsim"} == 1) == 2', 30, "serve and proxy scraped")
            started = time.time()
            loads = {}
            for name, url, model in (("serve", serve_url, "gpt-4o"), ("proxy", proxy_url, "gpt-4o-mini")):
                out = tmp / f"load-{name}"
                load = start(
                    f"llmsim load ({name})", tmp / f"load-{name}.log",
                    "load", "--target", url, "--model", model, "--duration", str(LOAD_S), "--rps", str(RPS),
                    "--seed", "5", "--out", str(out), "--no-html", "--quiet",
                    "--metrics", "127.0.0.1:0", "--metrics-linger", "4",
                )  # fmt: skip
                processes.append(load)
                metrics_port = int(read_line(load, r"metrics on http://127\.0\.0\.1:(\d+)/metrics")[1])
                prom.add_target(f"127.0.0.1:{metrics_port}", namespace=NAMESPACE, pod=f"load-{name}")
                loads[name] = (load, out)
            for load, _ in loads.values():
                assert load.proc.wait(timeout=LOAD_S + 60) == 0, f"{load.name}: {load.output()}"
            # The kill switch, the way the operator pulls it (`paused: true` in the mounted profile).
            for paused in (True, False):
                proxy_profile.write_text(
                    yaml.safe_dump({**PROXY_PROFILE, "paused": paused}), encoding="utf-8"
                )
                prom.wait_for(f'llmsim_proxy_paused{{pod="app-0"}} == {int(paused)}', 15, f"paused={paused}")
                time.sleep(2.5)  # a scrape and a rule evaluation in each state
            ended = time.time()
            reports = {n: json.loads((out / "report.json").read_text()) for n, (_, out) in loads.items()}
            yield Run(prom, started, ended, reports["serve"], reports["proxy"])
    finally:
        for process in reversed(processes):
            process.stop()


def lognormal_quantile(median: float, sigma: float, q: float) -> float:
    return median * math.exp(sigma * statistics.NormalDist().inv_cdf(q))


def quantile_sd(q: float, n: float, density: float) -> float:
    """Standard deviation of the sample q-quantile of n draws (asymptotic)."""
    return math.sqrt(q * (1 - q) / n) / density


def lognormal_density(x: float, median: float, sigma: float) -> float:
    z = math.log(x / median) / sigma
    return math.exp(-z * z / 2) / (x * sigma * math.sqrt(2 * math.pi))


def band(low: float, high: float) -> tuple[float, float]:
    """From the lower edge of the TTFT bucket holding `low` to the upper edge of the one holding `high`."""
    bounds = (*TTFT_BUCKETS_S, math.inf)
    lower = max([0.0, *(b for b in bounds if b < low)])
    upper = min(b for b in bounds if b >= high)
    return lower, upper


def test_p95_ttft_from_the_rules_matches_the_profile_and_the_load_generator(run: Run) -> None:
    prom, at = run.prom, run.ended
    series = {"namespace": NAMESPACE, "model": "gpt-4o", "mode": "simulate", "quantile": "0.95"}
    p95 = prom.value("namespace_provider_model_mode:llmsim_ttft_seconds:histogram_quantile", at, **series)
    sel = f'namespace="{NAMESPACE}", pod="serve-0", model="gpt-4o"'
    n = prom.value(f"sum(increase(llmsim_ttft_seconds_count{{{sel}}}[5m]))", at)
    mean = prom.value(f"sum(increase(llmsim_ttft_seconds_sum{{{sel}}}[5m])) / {n}", at)
    assert n >= 0.8 * LOAD_S * RPS * 0.95  # the load's successful requests (5 % are rate-limited)

    # the profile's configured p95 (also what llmsim_profile_latency_seconds exports)
    median, sigma = SERVE_TTFT["median"] / 1000, SERVE_TTFT["sigma"]
    configured = lognormal_quantile(median, sigma, 0.95)
    exported = prom.value(
        'namespace_pod_metric_quantile:llmsim_profile_latency_seconds:max{metric="ttft", quantile="0.95"}',
        at, pod="serve-0",
    )  # fmt: skip
    assert math.isclose(exported, configured, rel_tol=1e-9)
    sd = quantile_sd(0.95, n, lognormal_density(configured, median, sigma))
    lateness = max(0.0, mean - median * math.exp(sigma**2 / 2))  # the event loop is never early
    low, high = band(configured - 4 * sd, configured + 4 * sd + lateness)
    assert low <= p95 <= high, (
        f"p95 {p95:.4f} s outside [{low}, {high}] around the configured {configured:.4f} s"
    )

    # the load generator's measured p95 (its report; 1 %-accurate log histogram of client TTFTs)
    report = run.serve_report
    measured = report["latency"]["ttft_ms"]["p95"] / 1000
    n_client = report["histograms"]["latency"]["ttft_ms"]["count"]
    overhead = max(0.0, report["latency"]["ttft_ms"]["mean"] / 1000 - mean)
    density = lognormal_density(configured, median, sigma)
    sd_both = math.hypot(quantile_sd(0.95, n, density), quantile_sd(0.95, n_client, density))
    low, high = band(measured * 0.99 - 4 * sd_both - overhead, measured * 1.01 + 4 * sd_both)
    assert low <= p95 <= high, f"p95 {p95:.4f} s outside [{low}, {high}] around the client's {measured:.4f} s"

    # and the load generator's own histograms, on the same buckets, through its recording rule
    client_p95 = prom.value(
        "namespace_provider_model:llmsim_load_ttft_seconds:histogram_quantile", at,
        namespace=NAMESPACE, model="gpt-4o", quantile="0.95",
    )  # fmt: skip
    sd_client = quantile_sd(0.95, n_client, density)
    low, high = band(measured * 0.99 - 4 * sd_client, measured * 1.01 + 4 * sd_client)
    assert low <= client_p95 <= high, f"client p95 {client_p95:.4f} s outside [{low}, {high}]"


def range_query(prom: Prometheus, run: Run, expr: str) -> list[dict[str, Any]]:
    params = {"query": expr, "start": run.started, "end": run.ended, "step": "1s"}
    doc = prom.client.get("/api/v1/query_range", params=params).json()
    assert doc.get("status") == "success", f"{expr}: {doc.get('error')}"
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def has_finite_points(rows: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(v)) for row in rows for _, v in row["values"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_dashboard_query_returns_data(run: Run, path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    empty: list[str] = []
    for variable in doc["templating"]["list"]:
        if variable["type"] != "query":
            continue
        metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"]).groups()  # type: ignore[union-attr]
        if not run.prom.label_values(label, expand(metric)):
            empty.append(f"variable {variable['name']}")
    assert set(VARIABLE_DEFAULTS) >= {v["name"] for v in doc["templating"]["list"] if v["type"] == "query"}
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            if not has_finite_points(range_query(run.prom, run, expand(target["expr"]))):
                empty.append(f"panel {panel['title']!r} {target['refId']}: {target['expr']}")
    for annotation in doc["annotations"]["list"]:
        if not has_finite_points(range_query(run.prom, run, expand(annotation["expr"]))):
            empty.append(f"annotation {annotation['name']!r}: {annotation['expr']}")
    assert empty == []


def test_every_rule_evaluates_cleanly_and_nothing_alerts_on_healthy_traffic(run: Run) -> None:
    groups = run.prom.client.get("/api/v1/rules").json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) > 80
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    assert run.prom.query("ALERTS", run.ended) == []


def test_made_up_model_names_do_not_grow_the_series(run: Run) -> None:
    models = run.prom.label_values("model", 'llmsim_requests_total{pod="serve-0"}')
    flooded = [m for m in models if m.startswith("flood-")]
    assert len(flooded) == MODEL_LIMIT and "other" in models
    assert finite(run.prom.query('llmsim_requests_total{pod="serve-0", model="other"}', run.ended))
