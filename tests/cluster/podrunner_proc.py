"""The pod runner as a process next to the session's control plane, plus the controllers whose
pods it runs: a second kube-controller-manager with the job, deployment, replicaset, endpointslice
and root-CA publisher controllers (the session's own manager runs only garbage collection, namespaces
and service accounts; other cluster tests play the job controller themselves, so this manager
runs only while a drill module does, and the runner binds pods only in namespaces labelled for it).

    node = PodNode(plane, kube).start(); node.start_controllers()   # the `pod_node` fixture
    ns = node.namespace("drill", **INJECT)
    ...
    node.stop(); node.leaks() == []      # no process, no network namespace left
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from controlplane import ControlPlane
from kubeapi import NAMESPACES, Kube
from managedproc import ManagedProcess, wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV_BIN = str(Path(sys.executable).parent)
SCHEDULE_LABEL = "llmsim.io/test-node"
DRILL_CONTROLLERS = (
    "job-controller",
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "root-ca-certificate-publisher-controller",
)
"""Also `kube-root-ca.crt` in every namespace, the CA that pods' projected API credentials carry."""
SYNC_PERIOD_S = 1.0
"""The runner's volume/DNS/Service sync period (the kubelet's is about a minute)."""


def image_map() -> dict[str, Any]:
    """The images the drills use and the host programs they stand for."""
    return {
        "llmsim/sidecar:*": {"path": [VENV_BIN], "entrypoint": ["llmsim"]},
        "llmsim/sidecar": {"path": [VENV_BIN], "entrypoint": ["llmsim"]},
        "llmsim/operator:*": {"path": [VENV_BIN], "entrypoint": ["llmsim", "operator"]},
        "llmsim/demo-app:*": {"path": [VENV_BIN]},
        "redis:*": {"path": ["/usr/bin"], "entrypoint": ["redis-server"]},
        "llmsim-drills/app:*": {
            "path": [VENV_BIN],
            "mounts": {"/app": str(REPO / "examples" / "drills" / "app")},
            "entrypoint": ["python"],
        },
    }


class PodNode:
    def __init__(self, plane: ControlPlane, kube: Kube, sync_period_s: float = SYNC_PERIOD_S) -> None:
        self.plane = plane
        self.kube = kube
        self.id = uuid.uuid4().hex[:6]
        self.name = f"node-{self.id}"
        self.workdir = plane.workdir / f"pod-runner-{self.id}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = Path("/run") / f"llmsim-podrunner-{self.id}"
        self.status_file = self.workdir / "status.json"
        self.sync_period_s = sync_period_s
        self.namespaces: list[str] = []
        self._kcm: ManagedProcess | None = None
        self._runner: ManagedProcess | None = None
        self._seen_pids: set[int] = set()
        self._inodes: set[int] = set()

    @property
    def log_path(self) -> Path:
        return self.workdir / "podrunner.log"

    def start_controllers(self) -> None:
        """The second kube-controller-manager (job, deployment, replicaset, endpointslice)."""
        if self._kcm is not None and self._kcm.running():
            return
        pki = self.plane.workdir / "pki"
        args = {
            "kubeconfig": str(self.plane.admin.kubeconfig),
            "leader-elect": "false",
            "secure-port": "0",
            "controllers": ",".join(DRILL_CONTROLLERS),
            "service-account-private-key-file": str(pki / "sa.key"),
            "root-ca-file": str(pki / "ca.crt"),
            "service-cluster-ip-range": "10.0.0.0/24",
        }
        self._kcm = ManagedProcess(
            "kube-controller-manager-drills",
            [str(self.plane.bins.kube_controller_manager), *(f"--{k}={v}" for k, v in args.items())],
            self.workdir / "kube-controller-manager.log",
        ).start()

    def stop_controllers(self) -> None:
        """Stop them (other cluster tests play the job controller themselves)."""
        if self._kcm is not None:
            self._kcm.stop()
            self._kcm = None

    def start(self) -> PodNode:
        """The runner (the controllers start separately: `start_controllers`)."""
        cert, key = self.plane.ca.serving("llmsim-pod-runner", ["127.0.0.1", "localhost"]).write(
            self.workdir, "kubelet"
        )
        images = self.workdir / "images.json"
        images.write_text(json.dumps(image_map()))
        argv = [
            sys.executable, str(HERE / "podrunner.py"),
            "--kubeconfig", str(self.plane.admin.kubeconfig), "--node", self.name, "--node-id", self.id,
            "--state-dir", str(self.state_dir), "--images", str(images),
            "--kubelet-cert", str(cert), "--kubelet-key", str(key),
            "--schedule-label", f"{SCHEDULE_LABEL}={self.name}", "--sync-period-s", str(self.sync_period_s),
            "--status-file", str(self.status_file),
        ]  # fmt: skip
        self._runner = ManagedProcess(
            "podrunner", argv, self.log_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        self._runner.start()
        self._runner.wait_ready(
            lambda: self.status() and self.kube.find("v1/nodes", None, self.name), 60, "node registered"
        )
        return self

    def status(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return None
        self._seen_pids.update(found.get("pids") or [])
        self._inodes.update(found.get("netns_inodes") or [])
        return found

    def check_alive(self) -> None:
        self.plane.check_alive()
        for process in (self._kcm, self._runner):
            if process is not None:
                process.check_alive()

    def namespace(self, prefix: str = "drill", name: str | None = None, **labels: str) -> str:
        """A namespace whose pods this node runs (deleted by `cleanup_namespaces`)."""
        name = name or f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": name, "labels": {SCHEDULE_LABEL: self.name, **labels}}})  # fmt: skip
        self.namespaces.append(name)
        return name

    def cleanup_namespaces(self, wait_s: float = 0.0) -> None:
        """Delete the drill namespaces; wait up to `wait_s` for them to be gone (their Job pods
        need the job controller to drop its finalizer)."""
        for name in self.namespaces:
            self.kube.delete(NAMESPACES, None, name)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(
            self.kube.find(NAMESPACES, None, n) for n in self.namespaces
        ):
            time.sleep(0.2)
        self.namespaces.clear()

    def wait_pod(
        self, namespace: str, name: str, what: str = "Ready", timeout_s: float = 60
    ) -> dict[str, Any]:
        """Until the pod is Ready (or in phase `what`, e.g. Succeeded/Failed, or either: Terminal)."""

        def check() -> dict[str, Any] | None:
            pod = self.kube.find("v1/pods", namespace, name)
            if pod is None:
                return None
            status = pod.get("status") or {}
            if what == "Ready":
                ready = any(
                    c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
                )
                return pod if ready else None
            if what == "Terminal":
                return pod if status.get("phase") in ("Succeeded", "Failed") else None
            return pod if status.get("phase") == what else None

        return wait_for(
            check, timeout_s, f"pod {namespace}/{name} {what}", interval_s=0.1, alive=self.check_alive
        )

    def logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        query = f"?container={container}" if container else ""
        raw: bytes = self.plane.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log{query}", raw=True
        )
        return raw.decode(errors="replace")

    def stop(self) -> None:
        self.status()
        if self._runner is not None:
            self._runner.stop(grace_s=90)
        self.stop_controllers()

    def leaks(self) -> list[str]:
        """Network namespaces, processes and mount points the runner left behind."""
        out: list[str] = []
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        out += [f"netns {line.split()[0]}" for line in listed.splitlines() if f"-{self.id}" in line]
        for pid in sorted(self._seen_pids):
            if Path(f"/proc/{pid}").exists() and _not_zombie(pid):
                out.append(f"process {pid}")
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    inode = (proc / "ns" / "net").stat().st_ino
                except OSError:
                    continue
                if inode in self._inodes and _not_zombie(int(proc.name)):
                    out.append(f"process {proc.name} in a pod network namespace")
        if self.state_dir.exists():
            out.append(f"state dir {self.state_dir}")
        return out


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
