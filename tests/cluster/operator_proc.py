"""`llmsim operator` as a process, the way the chart's Deployment runs it: its container's
environment (read back from the installed Deployment) and a kubeconfig holding a TokenRequest token
of the chart's ServiceAccount, so every API call is checked against the chart's RBAC.

A pod would have its own network namespace and /tmp; processes on one host do not, so each replica
gets its own webhook address/port, metrics port and certificate directory. Nothing else differs
from the chart's environment."""

from __future__ import annotations

import re
import socket
import ssl
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from chart_release import Release
from managedproc import ManagedProcess, free_port
from prometheus_client.parser import text_string_to_metric_families

LLMSIM = Path(sys.executable).with_name("llmsim")
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 30.0


class OperatorProcess:
    def __init__(
        self,
        release: Release,
        workdir: Path,
        name: str = "operator",
        webhook_port: int | None = None,
        args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.release = release
        self.name = name
        self.webhook_port = webhook_port or release.webhook_port
        self.metrics_port = free_port()
        credentials = release.operator_credentials()
        self.environment = {
            **release.operator_env(),
            "LLMSIM_OPERATOR_WEBHOOK_ADDR": "127.0.0.1",
            "LLMSIM_OPERATOR_WEBHOOK_PORT": str(self.webhook_port),
            "LLMSIM_OPERATOR_METRICS_PORT": str(self.metrics_port),
            "LLMSIM_OPERATOR_WEBHOOK_CERT_DIR": str(workdir / name / "webhook-certs"),
            **(env or {}),
        }
        process_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(workdir / name),
            "KUBECONFIG": str(credentials.kubeconfig),
            "PYTHONUNBUFFERED": "1",
            **self.environment,
        }
        self.process = ManagedProcess(
            name, [str(LLMSIM), "operator", *args], workdir / name / "operator.log", env=process_env
        )

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, wait: bool = True) -> OperatorProcess:
        self.process.start()
        if wait:
            self.wait_serving()
        return self

    def wait_serving(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until the webhook answers TLS and the metrics endpoint answers."""
        self.process.wait_ready(
            self.serving_certificate, timeout_s, f"webhook TLS on 127.0.0.1:{self.webhook_port}"
        )
        self.process.wait_ready(lambda: self.metrics() is not None, timeout_s, "metrics endpoint")

    def wait_log(self, pattern: str, timeout_s: float = START_TIMEOUT_S) -> re.Match[str]:
        regex = re.compile(pattern)
        return self.process.wait_ready(lambda: regex.search(self.log()), timeout_s, f"log line /{pattern}/")

    def serving_certificate(self) -> bytes:
        """The DER certificate the webhook server presents (not verified here)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", self.webhook_port), timeout=2) as sock,
            ctx.wrap_socket(sock) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        if not der:
            raise ConnectionError("no certificate presented")
        return der

    def metrics(self) -> dict[str, float]:
        """The operator's Prometheus samples, `name{label="v",...}` -> value."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as rsp:
            text = rsp.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out

    def injections(self, result: str = "injected") -> float:
        return self.metrics().get(f'llmsim_operator_injections_total{{result="{result}"}}', 0.0)

    def running(self) -> bool:
        return self.process.running()

    def stop(self) -> int | None:
        return self.process.stop(grace_s=STOP_GRACE_S)
