"""A real Kubernetes control plane for tests, shaped like controller-runtime's envtest: etcd and
kube-apiserver on free 127.0.0.1 ports with a generated CA, serving certificate and service-account
signing key, RBAC authorization and the default admission plugins (MutatingAdmissionWebhook on),
plus kube-controller-manager with the garbage-collector, namespace and service-account controllers.

    with ControlPlane(testbins.binaries()) as plane:       # or plane.start() ... plane.stop()
        plane.admin.kubeconfig                             # system:masters, client certificate
        plane.add_user("alice", ("dev",)).kubeconfig       # any user/groups, for RBAC checks
        plane.service_account_kubeconfig("ns", "sa")       # a TokenRequest token, as a pod gets

Everything lives in one temporary directory (PKI, etcd data, logs, kubeconfigs) that `stop()`
removes after stopping every process it started, by PID. There is no scheduler and no kubelet:
pods are admitted and stored, and stay Pending. The pieces a node agent needs later (the CA, the
API URL, client certificates for any identity, extra API server and controller flags) are public.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from managedproc import ManagedProcess, free_port
from tinyca import Pem, TinyCA, service_account_key

from testbins import Binaries

CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
)
"""kube-controller-manager's controllers (names from cmd/kube-controller-manager/names): owner
references cascade, namespaces finish terminating, namespaces get their `default` ServiceAccount."""
START_TIMEOUT_S = 90.0
"""Per component; a busy 2-core machine takes 10-30 s for the API server alone."""
SERVICE_CIDR = "10.0.0.0/24"


class ApiError(RuntimeError):
    """An error status from the API server, with its `Status` object."""

    def __init__(self, method: str, path: str, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.message = str(body.get("message") or body)
        self.reason = str(body.get("reason") or "")
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}")

    @classmethod
    def from_http(cls, method: str, path: str, exc: urllib.error.HTTPError) -> ApiError:
        raw = exc.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"message": raw.decode(errors="replace")}
        return cls(method, path, exc.code, body if isinstance(body, dict) else {"message": str(body)})


@dataclass(frozen=True)
class User:
    """An identity with a kubeconfig for the control plane."""

    name: str
    kubeconfig: Path


@dataclass
class Timings:
    """Seconds from start to ready, per component."""

    etcd: float = 0.0
    apiserver: float = 0.0
    controller_manager: float = 0.0

    @property
    def total(self) -> float:
        return self.etcd + self.apiserver + self.controller_manager


@dataclass
class _Paths:
    root: Path
    pki: Path = field(init=False)
    logs: Path = field(init=False)
    kubeconfigs: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pki, self.logs, self.kubeconfigs = (self.root / d for d in ("pki", "logs", "kubeconfigs"))
        for folder in (self.pki, self.logs, self.kubeconfigs):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)


class ControlPlane:
    def __init__(
        self,
        bins: Binaries,
        controllers: Sequence[str] = CONTROLLERS,
        apiserver_args: Mapping[str, str] | None = None,
        controller_manager_args: Mapping[str, str] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.bins = bins
        self.controllers = tuple(controllers)
        self.extra_apiserver_args = dict(apiserver_args or {})
        self.extra_controller_manager_args = dict(controller_manager_args or {})
        self.start_timeout_s = start_timeout_s
        self.timings = Timings()
        self.ca = TinyCA()
        self._paths: _Paths | None = None
        self._processes: list[ManagedProcess] = []
        self.etcd_url = ""
        self.url = ""
        self._admin: User | None = None
        self._client_ctx: ssl.SSLContext | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self._paths is None:
            raise RuntimeError("the control plane is not started")
        return self._paths.root

    @property
    def admin(self) -> User:
        if self._admin is None:
            raise RuntimeError("the control plane is not started")
        return self._admin

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None and p.running()]

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._processes)

    def start(self, controller_manager: bool = True) -> ControlPlane:
        """Start etcd and the API server (and kube-controller-manager unless told not to: start it
        later with `start_controller_manager()`, e.g. once CRDs exist, see there)."""
        if self._paths is not None:
            raise RuntimeError("already started")
        self._paths = _Paths(Path(tempfile.mkdtemp(prefix="llmsim-control-plane-")))
        try:
            self._start_etcd()
            self._start_apiserver()
            if controller_manager:
                self.start_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process started, newest first, by PID; remove the working directory."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        if self._paths is not None:
            shutil.rmtree(self._paths.root, ignore_errors=True)
            self._paths = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def check_alive(self) -> None:
        """Raise ProcessFailed (with its log) when one of the control plane's processes died."""
        for process in self._processes:
            process.check_alive()

    # -- components --------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        paths = self._require_paths()
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        argv = [
            str(self.bins.etcd),
            "--name=default",
            f"--data-dir={paths.root / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]
        began = time.monotonic()
        process = self._spawn("etcd", argv)

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as rsp:
                return bool(json.load(rsp).get("health") == "true")

        process.wait_ready(healthy, self.start_timeout_s, f"GET {self.etcd_url}/health")
        self.timings.etcd = time.monotonic() - began

    def _start_apiserver(self) -> None:
        paths = self._require_paths()
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        ca_crt, _ = self.ca.pem.write(paths.pki, "ca")
        serving_crt, serving_key = self.ca.serving("kube-apiserver", self.api_hosts).write(
            paths.pki, "apiserver"
        )
        sa_pub, sa_key = service_account_key().write(paths.pki, "sa")
        args = {
            "etcd-servers": self.etcd_url,
            "bind-address": "127.0.0.1",
            "advertise-address": "127.0.0.1",
            "secure-port": str(port),
            "cert-dir": str(paths.root / "apiserver-certs"),
            "tls-cert-file": str(serving_crt),
            "tls-private-key-file": str(serving_key),
            "client-ca-file": str(ca_crt),
            "authorization-mode": "RBAC",
            "service-account-issuer": self.url,
            "service-account-key-file": str(sa_pub),
            "service-account-signing-key-file": str(sa_key),
            "service-cluster-ip-range": SERVICE_CIDR,
            "allow-privileged": "true",
            # envtest's choice: without it, pods in a namespace created a moment ago race the
            # service-account controller for their `default` ServiceAccount.
            "disable-admission-plugins": "ServiceAccount",
            # 127.0.0.1 is not a valid endpoint of the `kubernetes` Service; do not try to write it.
            "endpoint-reconciler-type": "none",
            "profiling": "false",
            **self.extra_apiserver_args,
        }
        began = time.monotonic()
        process = self._spawn("kube-apiserver", [str(self.bins.kube_apiserver), *_flags(args)])
        admin_pem = self.ca.client("llmsim-test-admin", ("system:masters",))
        self._client_ctx = self._ssl_context(admin_pem)
        process.wait_ready(
            lambda: self.request("GET", "/readyz", raw=True) == b"ok", self.start_timeout_s, "GET /readyz"
        )
        self.timings.apiserver = time.monotonic() - began
        self._admin = User("llmsim-test-admin", self._write_kubeconfig("admin", client=admin_pem))

    def start_controller_manager(self) -> None:
        """Start kube-controller-manager and wait until its service-account controller has created
        `default/default`. Its garbage collector learns resource types from discovery every 30 s,
        so owner references to a CRD's objects cascade reliably only for CRDs that existed when it
        started, or 30 s after they were created."""
        paths = self._require_paths()
        args = {
            "kubeconfig": str(self.admin.kubeconfig),
            "leader-elect": "false",
            "secure-port": "0",
            "controllers": ",".join(self.controllers),
            "service-account-private-key-file": str(paths.pki / "sa.key"),
            "root-ca-file": str(paths.pki / "ca.crt"),
            "service-cluster-ip-range": SERVICE_CIDR,
            **self.extra_controller_manager_args,
        }
        began = time.monotonic()
        process = self._spawn(
            "kube-controller-manager", [str(self.bins.kube_controller_manager), *_flags(args)]
        )
        if "serviceaccount-controller" in self.controllers:
            process.wait_ready(
                lambda: self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default"),
                self.start_timeout_s,
                "ServiceAccount default/default",
            )
        self.timings.controller_manager = time.monotonic() - began

    # -- identities --------------------------------------------------------------------------------

    @property
    def api_hosts(self) -> list[str]:
        """The names the API server's certificate is valid for."""
        return [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "10.0.0.1",
        ]

    def add_user(self, name: str, groups: Sequence[str] = ()) -> User:
        """A kubeconfig with a client certificate for `name` in `groups` (no RBAC binding is made)."""
        return User(
            name, self._write_kubeconfig(_file_name(name), client=self.ca.client(name, tuple(groups)))
        )

    def service_account_token(self, namespace: str, name: str, expiration_s: int = 3600) -> str:
        """A token from the TokenRequest API, the same kind the kubelet mounts into a pod."""
        review = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": expiration_s}},
        )  # fmt: skip
        return str(review["status"]["token"])

    def service_account_kubeconfig(self, namespace: str, name: str, expiration_s: int = 3600) -> User:
        token = self.service_account_token(namespace, name, expiration_s)
        user = f"system:serviceaccount:{namespace}:{name}"
        return User(user, self._write_kubeconfig(_file_name(user), token=token))

    # -- plumbing ----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bool = False,
        content_type: str = "application/json",
    ) -> Any:
        """One call to the API server as the admin (JSON in and out; `raw`: the bytes). An error
        status raises ApiError with the API server's message."""
        if self._client_ctx is None:
            raise RuntimeError("the API server is not started")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, context=self._client_ctx, timeout=30) as rsp:
                payload = rsp.read()
        except urllib.error.HTTPError as exc:
            raise ApiError.from_http(method, path, exc) from None
        return payload if raw else json.loads(payload)

    def kubectl(self, *args: str, user: User | None = None, check: bool = True, timeout_s: float = 60,
                input_text: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run the built kubectl against this control plane (as the admin unless `user` is given)."""
        kubeconfig = (user or self.admin).kubeconfig
        return subprocess.run(
            [str(self.bins.kubectl), f"--kubeconfig={kubeconfig}", *args],
            capture_output=True, text=True, check=check, timeout=timeout_s, input=input_text,
        )  # fmt: skip

    def _ssl_context(self, client: Pem) -> ssl.SSLContext:
        paths = self._require_paths()
        ctx = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        crt, key = client.write(paths.pki, "admin")
        ctx.load_cert_chain(crt, key)
        return ctx

    def _write_kubeconfig(self, stem: str, client: Pem | None = None, token: str | None = None) -> Path:
        paths = self._require_paths()

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        user: dict[str, str] = {}
        if client is not None:
            user = {"client-certificate-data": b64(client.cert), "client-key-data": b64(client.key)}
        if token is not None:
            user = {"token": token}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "llmsim-test", "cluster": {"server": self.url, "certificate-authority-data": b64(self.ca.cert_pem)}}
            ],
            "users": [{"name": stem, "user": user}],
            "contexts": [{"name": "llmsim-test", "context": {"cluster": "llmsim-test", "user": stem}}],
            "current-context": "llmsim-test",
        }  # fmt: skip
        path = paths.kubeconfigs / f"{stem}.kubeconfig"
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        paths = self._require_paths()
        process = ManagedProcess(name, argv, paths.logs / f"{name}.log").start()
        self._processes.append(process)
        return process

    def _require_paths(self) -> _Paths:
        if self._paths is None:
            raise RuntimeError("the control plane is not started")
        return self._paths


def _flags(args: Mapping[str, str]) -> list[str]:
    return [f"--{k}={v}" for k, v in args.items()]


def _file_name(user: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in user)
