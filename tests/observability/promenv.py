"""A real Prometheus (and promtool) for the observability tests: built from the Prometheus Go module
by tests/cluster/build.sh, started on 127.0.0.1 with a temporary data directory, stopped and removed
by the test. Tests skip, saying why, when the binaries have not been built."""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

import testbins

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "charts" / "llmsim" / "files" / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))
DASHBOARDS_DIR = REPO / "charts" / "llmsim" / "files" / "dashboards"
DASHBOARDS = sorted(DASHBOARDS_DIR.glob("*.json"))


def require_binaries() -> Path:
    """The directory holding `prometheus` and `promtool` (skips the test when they are not built)."""
    return testbins.require("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recorded_names() -> set[str]:
    """Every series name the rule files record."""
    names: set[str] = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names


class Prometheus:
    """A running Prometheus: its HTTP API and a file_sd file the test adds targets to."""

    def __init__(self, url: str, targets_file: Path) -> None:
        self.url = url
        self.targets_file = targets_file
        self._targets: list[dict[str, Any]] = []
        self.client = httpx.Client(base_url=url, timeout=10)

    def add_target(self, address: str, **target_labels: str) -> None:
        """Scrape `address` (host:port, path /metrics) with these target labels (namespace, pod)."""
        self._targets.append({"targets": [address], "labels": target_labels})
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._targets), encoding="utf-8")
        tmp.replace(self.targets_file)  # atomically: file_sd must never read half a file

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        doc = self.client.get("/api/v1/query", params=params).json()
        if doc.get("status") != "success":
            raise AssertionError(f"{expr}: {doc.get('errorType')}: {doc.get('error')}")
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def value(self, expr: str, at: float | None = None, **match: str) -> float:
        """The value of the one series of `expr` whose labels include `match`."""
        rows = [r for r in self.query(expr, at) if match.items() <= r["metric"].items()]
        if len(rows) != 1:
            raise AssertionError(f"{expr} {match}: expected one series, got {[r['metric'] for r in rows]}")
        return float(rows[0]["value"][1])

    def label_values(self, label: str, match: str) -> list[str]:
        doc = self.client.get(f"/api/v1/label/{label}/values", params={"match[]": match}).json()
        values: list[str] = doc["data"]
        return values

    def wait_for(self, expr: str, timeout_s: float, what: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.query(expr)
            if rows:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: `{expr}` returned nothing within {timeout_s:g} s")
            time.sleep(0.25)

    def scraped_healthy(self) -> dict[str, str]:
        """Target address -> health ('up', 'down', 'unknown')."""
        doc = self.client.get("/api/v1/targets").json()
        return {t["labels"]["instance"]: t["health"] for t in doc["data"]["activeTargets"]}


def prometheus_config(targets_file: Path, interval: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": "llmsim",
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": interval}],
            }
        ],
    }


@contextmanager
def running_prometheus(interval: str = "1s") -> Iterator[Prometheus]:
    """Prometheus on 127.0.0.1:<free port> with the chart's rule files, scraping the file_sd targets."""
    bins = require_binaries()
    workdir = Path(tempfile.mkdtemp(prefix="llmsim-prometheus-"))
    targets = workdir / "targets.json"
    targets.write_text("[]", encoding="utf-8")
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets, interval)), encoding="utf-8")
    log = (workdir / "prometheus.log").open("wb")
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # the free port may be taken between the probe and the bind
            port = free_port()
            proc = subprocess.Popen(
                [
                    str(bins / "prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            url = f"http://127.0.0.1:{port}"
            if _ready(proc, url):
                break
            proc.kill()
            proc.wait()
            proc = None
        if proc is None:
            raise AssertionError(
                f"prometheus did not start: {(workdir / 'prometheus.log').read_text()[-2000:]}"
            )
        prom = Prometheus(url, targets)
        try:
            yield prom
        finally:
            prom.client.close()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


VARIABLE_DEFAULTS: Mapping[str, str] = {"namespace": ".*", "pod": ".*", "model": ".*"}
"""What the dashboards' `All` selection means for each template variable (their `allValue`)."""
_GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}


def expand(expr: str) -> str:
    """A dashboard expression as Grafana sends it with every variable on `All`."""
    for macro, value in _GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    for name, value in VARIABLE_DEFAULTS.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    if "$" in re.sub(r"\{\{[^}]*\}\}", "", expr):
        raise AssertionError(f"unexpanded variable in {expr!r}")
    return expr


def finite(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if math.isfinite(float(r["value"][1]))]
