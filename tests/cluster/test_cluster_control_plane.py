"""The control plane itself: the built binaries report their release, RBAC and the controllers
work, pods are admitted and stay Pending, and starting or stopping one (here, or with
`make cluster`) leaves no process and no directory behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from controlplane import ControlPlane
from kubeapi import PODS, Kube
from managedproc import ProcessFailed

import testbins
from conftest import Cluster

HERE = Path(__file__).resolve().parent


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains `text` (e.g. a control plane's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_binaries_report_their_release(cluster: Cluster) -> None:
    version = cluster.plane.request("GET", "/version")
    assert (version["gitVersion"], version["major"], version["minor"]) == ("v1.37.2", "1", "37")
    client = cluster.plane.kubectl("version", "--client", "-o", "json").stdout
    assert '"gitVersion": "v1.37.2"' in client
    assert (
        "v4."
        in subprocess.run(
            [str(cluster.plane.bins.helm), "version", "--short"], capture_output=True, text=True
        ).stdout
    )


def test_rbac_is_enforced(cluster: Cluster, namespace: str) -> None:
    nobody = cluster.plane.add_user("nobody", ("developers",))
    denied = cluster.plane.kubectl("get", "pods", "-n", namespace, user=nobody, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr and 'User "nobody"' in denied.stderr
    assert cluster.plane.kubectl("get", "pods", "-n", namespace).returncode == 0


def test_pods_are_admitted_and_stay_pending(kube: Kube, namespace: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    stored = kube.create(PODS, namespace, pod)
    assert stored["status"]["phase"] == "Pending" and "nodeName" not in stored["spec"]
    assert "volumes" not in stored["spec"]  # the ServiceAccount admission plugin is off, as in envtest


def test_the_controller_manager_creates_default_service_accounts(kube: Kube, namespace: str) -> None:
    kube.wait(lambda: kube.find("v1/serviceaccounts", namespace, "default"), "ServiceAccount default", 30)


def test_a_control_plane_that_fails_to_start_says_why_and_leaves_nothing(tmp_path: Path) -> None:
    plane = ControlPlane(testbins.binaries(), apiserver_args={"no-such-flag": "1"}, start_timeout_s=60)
    with pytest.raises(ProcessFailed) as info:
        plane.start()
    assert "kube-apiserver exited" in str(info.value) and "unknown flag: --no-such-flag" in str(info.value)
    workdir = re.search(r"(\S+llmsim-control-plane-[^/\s]+)/logs/", str(info.value))
    assert workdir is not None
    assert plane.pids == [] and not Path(workdir.group(1)).exists()
    assert processes_mentioning(workdir.group(1)) == []  # etcd, started first, was stopped too


def test_make_cluster_starts_one_and_stops_everything_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "cluster_up.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        assert "control plane up in" in text, text
        kubeconfig = next(ln.split("=", 1)[1].strip() for ln in lines if "export KUBECONFIG=" in ln)
        pids = [int(p) for p in next(ln for ln in lines if "pids:" in ln).split(":", 1)[1].split()]
        workdir = str(Path(kubeconfig).parents[1])
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
        nodes = subprocess.run([str(testbins.binaries().kubectl), f"--kubeconfig={kubeconfig}", "get", "--raw", "/readyz"],
                               capture_output=True, text=True, timeout=30)  # fmt: skip
        assert nodes.stdout.strip() == "ok"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "control plane stopped" in (proc.stdout.read() if proc.stdout else "")
    assert not any(alive(pid) for pid in pids)
    assert not Path(workdir).exists()
    assert processes_mentioning(workdir) == []
