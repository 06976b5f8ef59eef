"""Where the test-infrastructure binaries are (the control plane for tests/cluster, prometheus and
promtool for tests/observability): the cache directories `tests/cluster/build.sh --locate` prints
(`make cluster-bins` builds them; `.ci/run` does so when the cache is empty)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

BUILD_SH = Path(__file__).resolve().parent / "cluster" / "build.sh"
REQUIRED = ("kube", "etcd", "helm")
"""Components the cluster tests need (prometheus is for the observability tests)."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    etcd: Path
    helm: Path


@cache
def locate(components: tuple[str, ...] = REQUIRED) -> dict[str, Path]:
    """{component: bin dir} for each complete component; missing ones are left out."""
    found: dict[str, Path] = {}
    if shutil.which("go") is None:  # the cache key includes the Go version
        return found
    for component in components:
        result = subprocess.run(
            ["bash", str(BUILD_SH), "--locate", component], capture_output=True, text=True, timeout=60
        )
        if result.returncode == 0 and result.stdout.strip():
            found[component] = Path(result.stdout.strip().splitlines()[-1])
    return found


def missing_reason() -> str | None:
    """Why the cluster tests cannot run here, or None when every binary is in the cache."""
    if shutil.which("go") is None:
        return (
            "no Go toolchain on PATH to locate or build the control-plane binaries (tests/cluster/build.sh)"
        )
    found = locate()
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        return (
            f"control-plane binaries not built ({', '.join(missing)}): run `make cluster-bins` "
            "(tests/cluster/build.sh; about 30 min the first time, cached afterwards)"
        )
    return None


def binaries() -> Binaries:
    found = locate()
    kube, etcd, helm = found["kube"], found["etcd"], found["helm"]
    return Binaries(
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kubectl=kube / "kubectl",
        etcd=etcd / "etcd",
        helm=helm / "helm",
    )


def require(component: str) -> Path:
    """The bin dir of one component, or skip the test saying how to build it."""
    found = locate((component,)).get(component)
    if found is None:
        pytest.skip(
            f"the {component} test binaries are not built: run `tests/cluster/build.sh {component}` (needs Go)"
        )
    return found
