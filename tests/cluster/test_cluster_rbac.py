"""The chart's least-privilege RBAC against the real API server (issue 18, item 8): a release with
`operator.watchNamespaces` (namespaced scope, the default then) reconciles and injects in its
namespace with only its Roles, and its ServiceAccount is denied everything elsewhere (a ConfigMap
in kube-system, pods/log there, Secrets in another namespace) and any Secret but its CA's."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import chart_release
import pytest
from cluster_objects import app_pod, profile, ready, sidecars
from controlplane import User
from kubeapi import PODS, PROFILES, Kube
from managedproc import free_port
from operator_proc import OperatorProcess

from conftest import Cluster, Operators
from llmsim_operator import constants as c

NARROW_RELEASE = "llmsim-narrow"
NARROW_NAMESPACE = "llmsim-narrow-system"


@pytest.fixture()
def narrow(
    cluster: Cluster, operators: Operators, new_namespace: Callable[..., str]
) -> Iterator[tuple[chart_release.Release, str]]:
    """A second release, namespaced to one fresh namespace (the shared cluster-wide operator is
    stopped, so only the narrow one can reconcile there)."""
    operators.stop_shared()
    namespace = new_namespace("narrow")
    release = chart_release.install(
        cluster.plane,
        webhook_port=free_port(),
        release=NARROW_RELEASE,
        namespace=NARROW_NAMESPACE,
        **{
            "operator.watchNamespaces": [namespace],
            "operator.replicas": 1,
            "operator.peering.enabled": False,
            "podDisruptionBudget.enabled": False,
        },
    )
    try:
        yield release, namespace
    finally:
        chart_release.uninstall(release)


def _can(cluster: Cluster, user: User, *args: str) -> bool:
    result = cluster.plane.kubectl("auth", "can-i", *args, user=user, check=False)
    return result.stdout.strip() == "yes"


def test_a_namespaced_release_reconciles_its_namespace_and_is_denied_elsewhere(
    cluster: Cluster, kube: Kube, narrow: tuple[chart_release.Release, str]
) -> None:
    release, namespace = narrow
    env = release.operator_env()
    assert env["LLMSIM_OPERATOR_WATCH_NAMESPACES"] == namespace
    assert env["LLMSIM_OPERATOR_INJECT_NAMESPACES"] == namespace
    sa = release.operator_credentials()
    # denied: what a cluster-wide install could do
    denied = cluster.plane.kubectl(
        "create", "configmap", "probe", "-n", "kube-system", "--from-literal=a=b", user=sa, check=False
    )
    assert denied.returncode != 0 and "is forbidden" in denied.stderr, denied.stderr
    for args in (
        ("create", "configmaps", "-n", "kube-system"),
        ("create", "jobs.batch", "-n", "kube-system"),
        ("get", "pods", "--subresource=log", "-n", "kube-system"),
        ("create", "secrets", "-n", "default"),
        ("create", "secrets", "-n", "kube-system"),
        ("list", "secrets", "-n", namespace),
        ("get", "secrets/app-db-password", "-n", namespace),
        ("list", "pods", "--all-namespaces"),
        ("create", "configmaps", "--all-namespaces"),
    ):
        assert not _can(cluster, sa, *args), args
    # allowed: what reconciling and injecting in its namespace need
    for args in (
        ("watch", "simulationprofiles.llmsim.io", "-n", namespace),
        ("create", "configmaps", "-n", namespace),
        ("create", "jobs.batch", "-n", namespace),
        ("get", "pods", "--subresource=log", "-n", namespace),
        ("create", "secrets", "-n", namespace),
        ("get", f"secrets/{env['LLMSIM_OPERATOR_CA_SECRET']}", "-n", namespace),
    ):
        assert _can(cluster, sa, *args), args

    operator = OperatorProcess(release, cluster.workdir, name=f"narrow-{namespace}").start()
    try:
        kube.create(PROFILES, namespace, profile("drill"))
        ready(kube, namespace, "drill")
        probe = app_pod("probe", {c.PROFILE_ANNOTATION: "drill"})
        kube.wait(lambda: sidecars(kube.create(PODS, namespace, probe, dry_run=True)), "webhook injects")
        stored = kube.create(PODS, namespace, app_pod("chat", {c.PROFILE_ANNOTATION: "drill"}))
        assert len(sidecars(stored)) == 1  # the CA Secret was created with the namespaced Role
        log = operator.log()
        assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    finally:
        assert operator.stop() == 0, operator.log()[-3000:]
