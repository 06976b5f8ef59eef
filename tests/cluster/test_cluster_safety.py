"""Live-traffic safety against the real API server: two `llmsim proxy` processes (started from the
CLI, as the injected sidecar runs) watch one SimulationProfile with the namespace's `llmsim-sidecar`
Role, which the operator grants to the ServiceAccount of an injected pod. `paused` reaches both
within seconds (propagation measured over 24 flips), deletion fails both safe, an in-cluster
`*.svc` provider is intercepted, and the admin port refuses a caller without the token the operator
put into the namespace's Secret."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cluster_objects import RECONCILE_S, app_pod, profile, ready
from kubeapi import CONFIGMAPS, PODS, PROFILES, SECRETS, Kube
from managedproc import ManagedProcess, free_port, wait_for
from operator_proc import OperatorProcess

from conftest import Cluster
from llmsim_operator import constants as c

FLIPS = 24
"""`paused` flips measured (each seen by both sidecars: 48 samples)."""
P99_BOUND_S = 3.0
UPSTREAM_TEXT = "upstream says hi"
QUIET = {
    "seed": 3,
    "interceptHosts": ["vllm.ml.svc:8000"],
    "latency": {"ttftMs": {"type": "constant", "value": 0}, "itlMs": {"type": "constant", "value": 0},
                "outputTokens": {"type": "constant", "value": 4}},
}  # fmt: skip
ROLE_BINDINGS = "rbac.authorization.k8s.io/v1/rolebindings"
ROLES = "rbac.authorization.k8s.io/v1/roles"


class _Upstream(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"id": "up", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": UPSTREAM_TEXT}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture()
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Sidecar:
    """One `llmsim proxy` process watching the profile, with its listener and admin addresses."""

    def __init__(self, process: ManagedProcess, listen: int, admin: int) -> None:
        self.process, self.listen, self.admin = process, listen, admin

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/healthz", timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
        return doc

    def admin_call(self, route: str, token: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin}{route}", method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def chat(self, via_proxy_to: str | None = None, **headers: str) -> str:
        """The answer's text: to the base-url listener, or through the proxy to `via_proxy_to`."""
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
        url = f"{via_proxy_to or f'http://127.0.0.1:{self.listen}'}/v1/chat/completions"
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer sk-x", **headers})  # fmt: skip
        handlers = (
            [urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{self.listen}"})]
            if via_proxy_to
            else [urllib.request.ProxyHandler({})]
        )
        with urllib.request.build_opener(*handlers).open(req, timeout=10) as resp:
            doc = json.loads(resp.read())
        return str(doc["choices"][0]["message"]["content"])


def start_sidecar(cluster: Cluster, workdir: Path, index: int, namespace: str, profile_file: Path,
                  token_file: Path, admin_token: Path, upstream: int, *extra: str,
                  ready: bool = True) -> Sidecar:  # fmt: skip
    listen, admin = free_port(), free_port()
    argv = [
        sys.executable, "-m", "llmsim.cli.main", "proxy", "--no-uvloop", "--log-level", "info",
        "--profile", str(profile_file), "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{admin}",
        "--ca-dir", str(workdir / f"ca-{index}"), "--admin-token-file", str(admin_token),
        "--watch-profile", f"{namespace}/drill", "--kube-api", cluster.plane.url,
        "--kube-token-file", str(token_file), "--kube-ca-file", str(cluster.plane.workdir / "pki" / "ca.crt"),
        "--upstream", f"openai=http://127.0.0.1:{upstream}", "--resolve", f"vllm.ml.svc=127.0.0.1:{upstream}",
        *extra,
    ]  # fmt: skip
    process = ManagedProcess(f"sidecar-{index}", argv, workdir / f"sidecar-{index}.log",
                             env={**os.environ, "PYTHONUNBUFFERED": "1"}).start()  # fmt: skip
    sidecar = Sidecar(process, listen, admin)
    if ready:
        process.wait_ready(lambda: _ready(sidecar), 30, "serving with the watched profile")
    return sidecar


def _ready(sidecar: Sidecar) -> bool | None:
    try:
        return sidecar.health()["watching"] or None
    except OSError:
        return None


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_two_sidecars_follow_the_kill_switch_in_seconds_and_fail_safe_on_deletion(
    cluster: Cluster, kube: Kube, operator: OperatorProcess, namespace: str, upstream: int, tmp_path: Path
) -> None:
    kube.create(PROFILES, namespace, profile("drill", **QUIET))
    ready(kube, namespace, "drill")
    # an injected pod: the operator binds its ServiceAccount to the namespace's sidecar Role
    kube.create(PODS, namespace, app_pod("chat", annotations={c.PROFILE_ANNOTATION: "drill"}))

    def bound() -> bool | None:
        binding = kube.find(ROLE_BINDINGS, namespace, c.SIDECAR_ACCESS_NAME)
        names = {s["name"] for s in (binding or {}).get("subjects") or []}
        return "default" in names or None

    kube.wait(bound, "the sidecar RoleBinding naming ServiceAccount default", RECONCILE_S)
    rules = kube.get(ROLES, namespace, c.SIDECAR_ACCESS_NAME)["rules"]
    assert {"get", "list", "watch"} == set(rules[0]["verbs"]) and "patch" not in json.dumps(rules)
    secret = kube.get(SECRETS, namespace, c.ADMIN_SECRET)
    admin_token = tmp_path / "admin-token"
    admin_token.write_bytes(base64.b64decode(secret["data"][c.ADMIN_TOKEN_KEY]))
    sa_token = tmp_path / "sa-token"
    sa_token.write_text(cluster.plane.service_account_token(namespace, "default"))
    profile_file = tmp_path / "profile.yaml"  # what the kubelet mounts: the fallback
    profile_file.write_text(
        kube.get(CONFIGMAPS, namespace, "llmsim-profile-drill-cfg")["data"][c.PROFILE_FILE]
    )

    sidecars = [
        start_sidecar(cluster, tmp_path, i, namespace, profile_file, sa_token, admin_token, upstream)
        for i in range(2)
    ]
    try:
        for sidecar in sidecars:
            assert sidecar.chat() != UPSTREAM_TEXT  # simulated
            assert sidecar.chat(via_proxy_to="http://vllm.ml.svc:8000") != UPSTREAM_TEXT  # *.svc intercepted

        delays: list[float] = []
        for flip in range(FLIPS):
            paused = flip % 2 == 0
            began = time.perf_counter()
            kube.patch(PROFILES, namespace, "drill", {"spec": {"paused": paused}})
            pending = set(range(len(sidecars)))
            deadline = began + 10
            while pending and time.perf_counter() < deadline:
                for i in sorted(pending):
                    if sidecars[i].health()["paused"] is paused:
                        delays.append(time.perf_counter() - began)
                        pending.discard(i)
                time.sleep(0.005)
            assert not pending, f"flip {flip}: sidecars {pending} still show paused={not paused}"
            if flip in (0, 1):  # what a paused profile means for traffic
                for sidecar in sidecars:
                    assert (sidecar.chat() == UPSTREAM_TEXT) is paused
        p50, p99 = statistics.median(delays), percentile(delays, 0.99)
        print(f"\npaused propagation over {FLIPS} flips x {len(sidecars)} sidecars: "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms")  # fmt: skip
        assert p99 < P99_BOUND_S

        # the admin port: the app's side (no token) is refused; the Secret's token works
        status, doc = sidecars[0].admin_call("/pause", None)
        assert status == 401 and doc["error"]["code"] == "missing_token"
        status, _ = sidecars[0].admin_call("/pause", "not-the-token")
        assert status == 401
        status, doc = sidecars[0].admin_call("/pause", admin_token.read_text().strip())
        assert status == 200 and doc["paused"] is True
        assert sidecars[0].admin_call("/resume", admin_token.read_text().strip())[0] == 200

        def reasons() -> set[str]:
            return {e["reason"] for e in kube.events(namespace, "drill")}

        # the audit trail: the operator's Events of the profile's flips (naming the field manager),
        # the sidecar's own of its admin API (posted with the Role's `create` on events)
        wanted = {"Paused", "Resumed", "SidecarPaused", "SidecarResumed"}
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: reasons() >= wanted or None, 30, "audit events")
        assert reasons() >= wanted, reasons()
        paused_event = next(e for e in kube.events(namespace, "drill") if e["reason"] == "Paused")
        assert paused_event["message"].startswith("spec.paused set to true by "), paused_event["message"]
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{sidecars[0].admin}/metrics", timeout=5).read().decode()
        )
        assert f'llmsim_control_actions_total{{action="paused",source="profile"}} {FLIPS // 2}.0' in metrics
        assert 'llmsim_control_actions_total{action="paused",source="admin-api"} 1.0' in metrics

        kube.delete(PROFILES, namespace, "drill")
        for sidecar in sidecars:
            wait_for(
                lambda s=sidecar: s.health()["failsafe"] == "deleted" or None, 10, "fail-safe on deletion"
            )  # type: ignore[misc]
            assert sidecar.chat(**{"x-simulation-mode": "simulate"}) == UPSTREAM_TEXT  # nothing re-arms it
            assert sidecar.chat(via_proxy_to="http://vllm.ml.svc:8000") == UPSTREAM_TEXT
        kube.wait(lambda: "SidecarFailSafe" in reasons() or None, "the fail-safe's event")
        log = sidecars[0].process.log_path.read_text()
        assert re.search(r"fail-safe \(deleted\)", log), log[-2000:]
    finally:
        for sidecar in sidecars:
            sidecar.process.stop()


def test_the_namespace_kill_switch_from_the_cli_pauses_a_watching_sidecar_and_is_audited(
    cluster: Cluster, kube: Kube, operator: OperatorProcess, namespace: str, upstream: int, tmp_path: Path
) -> None:
    kube.create(PROFILES, namespace, profile("drill", **QUIET))
    ready(kube, namespace, "drill")
    kube.create(PODS, namespace, app_pod("chat", annotations={c.PROFILE_ANNOTATION: "drill"}))
    kube.wait(
        lambda: "default" in {s["name"] for s in (kube.find(ROLE_BINDINGS, namespace, c.SIDECAR_ACCESS_NAME) or {}).get("subjects") or []} or None,
        "the sidecar RoleBinding", RECONCILE_S,
    )  # fmt: skip
    admin_token = tmp_path / "admin-token"
    admin_token.write_bytes(
        base64.b64decode(kube.get(SECRETS, namespace, c.ADMIN_SECRET)["data"][c.ADMIN_TOKEN_KEY])
    )
    sa_token = tmp_path / "sa-token"
    sa_token.write_text(cluster.plane.service_account_token(namespace, "default"))
    profile_file = tmp_path / "profile.yaml"
    profile_file.write_text(
        kube.get(CONFIGMAPS, namespace, "llmsim-profile-drill-cfg")["data"][c.PROFILE_FILE]
    )
    sidecar = start_sidecar(cluster, tmp_path, 0, namespace, profile_file, sa_token, admin_token, upstream)

    def llmsim(*args: str) -> str:
        import subprocess

        done = subprocess.run([sys.executable, "-m", "llmsim.cli.main", *args, "--kubeconfig",
                               str(cluster.plane.admin.kubeconfig)], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        assert sidecar.chat() != UPSTREAM_TEXT
        began = time.perf_counter()
        assert llmsim("pause", "-n", namespace).startswith("paused 1 namespace(s)")
        wait_for(lambda: sidecar.health()["paused"] or None, 10, "the namespace kill switch")
        print(
            f"\nnamespace kill switch: sidecar paused {time.perf_counter() - began:.2f} s after `llmsim pause`"
        )
        assert sidecar.chat() == UPSTREAM_TEXT
        marked = kube.get(PROFILES, namespace, "drill")
        reason = marked["metadata"]["annotations"]["llmsim.io/kill-switch"]
        assert reason == f"namespace {namespace} llmsim.io/paused=true (set by llmsim)"
        assert marked["spec"].get("paused") is not True  # the user's spec is left alone
        cm = kube.get(CONFIGMAPS, namespace, "llmsim-profile-drill-cfg")["data"][c.PROFILE_FILE]
        assert "paused: true" in cm  # the file fallback pauses too
        assert llmsim("resume", "-n", namespace).startswith("resumed 1 namespace(s)")
        wait_for(lambda: sidecar.health()["paused"] is False or None, 10, "the kill switch released")
        assert sidecar.chat() != UPSTREAM_TEXT
        reasons = kube.wait(
            lambda: {e["reason"] for e in kube.events(namespace, "drill")} >= {"KillSwitchPaused", "KillSwitchResumed"} or None,
            "kill-switch events",
        )  # fmt: skip
        assert reasons
    finally:
        sidecar.process.stop()


def test_a_sidecar_the_api_refuses_serves_its_file_then_fails_safe_after_the_grace(
    cluster: Cluster, kube: Kube, operator: OperatorProcess, namespace: str, upstream: int, tmp_path: Path
) -> None:
    kube.create(PROFILES, namespace, profile("drill", **QUIET))
    ready(kube, namespace, "drill")
    kube.create(
        "v1/serviceaccounts",
        namespace,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "unbound"}},
    )
    token = tmp_path / "sa-token"  # a ServiceAccount no RoleBinding names: every read is 403
    token.write_text(cluster.plane.service_account_token(namespace, "unbound"))
    admin_token = tmp_path / "admin-token"
    admin_token.write_text("t")
    profile_file = tmp_path / "profile.yaml"
    profile_file.write_text(
        kube.get(CONFIGMAPS, namespace, "llmsim-profile-drill-cfg")["data"][c.PROFILE_FILE]
    )
    sidecar = start_sidecar(cluster, tmp_path, 0, namespace, profile_file, token, admin_token, upstream,
                            "--watch-grace-s", "8", ready=False)  # fmt: skip
    try:
        sidecar.process.wait_ready(lambda: sidecar.health(), 30, "serving")
        began = time.monotonic()
        health = sidecar.health()
        assert health["watching"] is False and health["failsafe"] is None
        assert sidecar.chat() != UPSTREAM_TEXT  # within the grace the mounted file applies
        wait_for(lambda: sidecar.health()["failsafe"] == "unreadable" or None, 20, "the fail-safe")
        assert time.monotonic() - began < 15
        assert sidecar.chat() == UPSTREAM_TEXT
        assert "HTTP 403" in sidecar.process.log_path.read_text()
    finally:
        sidecar.process.stop()
