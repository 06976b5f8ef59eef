"""Fixtures of the cluster tests: one real control plane per session (etcd, kube-apiserver,
kube-controller-manager built by build.sh), the chart installed into it with Helm, and
`llmsim operator` processes authenticated as the chart's ServiceAccount.

Without the binaries every test here is skipped with the reason (`make cluster-bins` builds them;
`.ci/run` does when the cache is empty). The summary line `cluster tests: N ran ...` reports what
ran, the control plane's start-up time and each module's time (`.ci/run` checks it).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chart_release
import pytest
from controlplane import ControlPlane
from kubeapi import NAMESPACES, Kube
from managedproc import free_port
from operator_proc import OperatorProcess
from podrunner_proc import PodNode

import testbins

HERE = Path(__file__).resolve().parent
_STATS: dict[str, Any] = {"ran": 0, "modules": defaultdict(float), "startup": None, "run_last": False}
_POOLS: list[Operators] = []  # the session's operator pool, once made (see pytest_runtest_teardown)


def _is_cluster_item(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).resolve().parent == HERE


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = testbins.missing_reason()
    for item in items:
        if _is_cluster_item(item):
            item.add_marker(pytest.mark.cluster)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
    # A test that waits for the wall clock (minute boundaries of a cron schedule) goes last; its
    # session-scoped head-start fixture sets up what it waits for when its module starts, so the
    # wait passes while the other tests run (run alone, it waits as long as ever).
    last = [item for item in items if _is_cluster_item(item) and item.get_closest_marker("run_last")]
    if last:
        items[:] = [item for item in items if item not in last] + last
    _STATS["run_last"] = bool(last)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After the last cluster test before the `run_last` ones, start the shared replica again (a
    test may have stopped it) and leave it running meanwhile: what they wait for is the operator's
    doing (a scheduled run starts only while a replica looks)."""
    if not _STATS["run_last"] or not _is_cluster_item(item) or item.get_closest_marker("run_last"):
        return
    if nextitem is None or (_is_cluster_item(nextitem) and not nextitem.get_closest_marker("run_last")):
        return  # more cluster tests follow, or nothing does
    for pool in _POOLS:
        pool.running_shared()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if Path(report.fspath).resolve().parent != HERE:
        return
    _STATS["modules"][Path(report.fspath).name] += report.duration
    if report.when == "call" and report.outcome in ("passed", "failed"):
        _STATS["ran"] += 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _STATS["modules"]:
        return
    reason = testbins.missing_reason()
    if reason and not _STATS["ran"]:
        terminalreporter.write_line(f"cluster tests: 0 ran (skipped: {reason})", yellow=True)
        return
    startup = _STATS["startup"]
    modules = ", ".join(f"{name} {secs:.1f} s" for name, secs in sorted(_STATS["modules"].items()))
    terminalreporter.write_line(
        f"cluster tests: {_STATS['ran']} ran; control plane up in {startup or 0:.1f} s; {modules}"
    )


@dataclass
class Cluster:
    plane: ControlPlane
    release: chart_release.Release
    kube: Kube
    workdir: Path
    startup: dict[str, float]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """etcd + kube-apiserver, the chart installed, then kube-controller-manager (after the CRDs, so
    its garbage collector knows them from the start: it rediscovers resources only every 30 s)."""
    began = time.monotonic()
    plane = ControlPlane(testbins.binaries())
    plane.start(controller_manager=False)
    try:
        release = chart_release.install(plane, webhook_port=free_port())
        installed = time.monotonic()
        plane.start_controller_manager()
        startup = {
            "etcd": plane.timings.etcd,
            "apiserver": plane.timings.apiserver,
            "helm install": installed - began - plane.timings.etcd - plane.timings.apiserver,
            "controller-manager": plane.timings.controller_manager,
            "total": time.monotonic() - began,
        }
        _STATS["startup"] = startup["total"]
        yield Cluster(plane, release, Kube(plane), tmp_path_factory.mktemp("operators"), startup)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    return cluster.kube


class Operators:
    """The operator processes of a session: one shared replica the tests reuse, plus any extra
    ones a test starts (stopped at the end of that test)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.shared: OperatorProcess | None = None
        self._extra: list[OperatorProcess] = []

    def new(self, name: str | None = None, **kwargs: Any) -> OperatorProcess:
        process = OperatorProcess(
            self.cluster.release,
            self.cluster.workdir,
            name=name or f"operator-{uuid.uuid4().hex[:6]}",
            **kwargs,
        )
        self._extra.append(process)
        return process

    def running_shared(self) -> OperatorProcess:
        if self.shared is None or not self.shared.running():
            self.shared = OperatorProcess(
                self.cluster.release, self.cluster.workdir, name=f"shared-{uuid.uuid4().hex[:6]}"
            ).start()
        return self.shared

    def stop_shared(self) -> None:
        if self.shared is not None:
            self.shared.stop()
            self.shared = None

    def stop_extra(self) -> None:
        for process in reversed(self._extra):
            process.stop()
        self._extra.clear()


@pytest.fixture(scope="session")
def operators(cluster: Cluster) -> Iterator[Operators]:
    pool = Operators(cluster)
    _POOLS.append(pool)
    yield pool
    _POOLS.remove(pool)
    pool.stop_extra()
    pool.stop_shared()


@pytest.fixture()
def operator(operators: Operators) -> Iterator[OperatorProcess]:
    """The shared operator replica, as the chart runs it (peering on, one replica)."""
    yield operators.running_shared()
    operators.stop_extra()


@pytest.fixture()
def extra_operators(operators: Operators) -> Iterator[Operators]:
    """Start more replicas with `.new(...)`; they are stopped when the test ends."""
    yield operators
    operators.stop_extra()


@pytest.fixture()
def new_namespace(kube: Kube) -> Iterator[Callable[..., str]]:
    """Create namespaces (optionally labelled); each is deleted when the test ends."""
    made: list[str] = []

    def make(prefix: str = "t", **labels: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": name, "labels": labels}})  # fmt: skip
        made.append(name)
        return name

    yield make
    for name in made:
        kube.delete(NAMESPACES, None, name)


@pytest.fixture()
def namespace(new_namespace: Callable[..., str]) -> str:
    return new_namespace()


@pytest.fixture(scope="session")
def pod_runner(cluster: Cluster) -> Iterator[PodNode]:
    """The pod runner's node (tests/cluster/podrunner.py), for the whole session once a drill
    needs it; stopping it must leave no process or network namespace behind."""
    node = PodNode(cluster.plane, cluster.kube).start()
    try:
        yield node
    finally:
        node.cleanup_namespaces()
        node.stop()
    leaks = node.leaks()
    assert leaks == [], f"the pod runner left {leaks}; log: {node.log_path}"


@pytest.fixture(scope="module")
def pod_node(pod_runner: PodNode) -> Iterator[PodNode]:
    """The pod runner plus the controllers whose pods it runs (job, deployment, replicaset,
    endpointslice), for one drill module; its namespaces are deleted when the module ends."""
    pod_runner.start_controllers()
    try:
        yield pod_runner
    finally:
        pod_runner.cleanup_namespaces(wait_s=60)
        pod_runner.stop_controllers()
