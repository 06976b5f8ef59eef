"""Least-privilege RBAC (issue 18, item 8): with `watchNamespaces` the operator gets Roles in the
namespaces it reconciles and injects, and nothing namespaced cluster-wide; cluster-wide rules only
with `rbac.scope: cluster` (or no `watchNamespaces`); nothing in kube-system unless listed."""

from __future__ import annotations

from typing import Any

import helmrender
import pytest
from chartcases import operator_env
from test_chart_objects import allows, rules_of

from llmsim_operator import constants

NAMESPACED_KINDS_CLUSTER_WIDE = [
    ("", "configmaps", "create"),
    ("batch", "jobs", "create"),
    ("", "pods/log", "get"),
    ("", "secrets", "create"),
    ("", "pods", "list"),
    (constants.GROUP, constants.PROFILES, "watch"),
]
CASES: dict[str, dict[str, Any]] = {
    "watched": {"operator": {"watchNamespaces": ["apps", "ml"]}},
    "watched-and-injected": {
        "operator": {"watchNamespaces": ["apps"]},
        "injection": {"namespaces": ["apps", "web"]},
    },
    "watched-cluster-asked": {"operator": {"watchNamespaces": ["apps"]}, "rbac": {"scope": "cluster"}},
    "kube-system-listed": {"operator": {"watchNamespaces": ["kube-system", "apps"]}},
}
REFUSED = {
    "namespaced-without-namespaces": {"rbac": {"scope": "namespaced"}},
    "bad-scope": {"rbac": {"scope": "all"}},
}


@pytest.fixture(scope="module")
def cases() -> dict[str, Any]:
    jobs = [helmrender.Job(v) for v in (*CASES.values(), *REFUSED.values())]
    results = helmrender.render_many(jobs).results
    return dict(zip([*CASES, *REFUSED], results, strict=True))


def _role_namespaces(result: helmrender.Rendered) -> set[str]:
    return {r["metadata"]["namespace"] for r in result.find("Role")}


def test_watched_namespaces_mean_namespaced_roles_and_nothing_namespaced_cluster_wide(
    cases: dict[str, Any],
) -> None:
    result = cases["watched"]
    cluster = rules_of(result, "ClusterRole")
    for group, resource, verb in NAMESPACED_KINDS_CLUSTER_WIDE:
        assert not allows(cluster, group, resource, verb), (resource, verb)
    assert _role_namespaces(result) == {helmrender.NAMESPACE, "apps", "ml"}
    for namespace in ("apps", "ml"):
        rules = rules_of(result, "Role", namespace)
        assert allows(rules, constants.GROUP, constants.PROFILES, "watch")
        assert allows(rules, "", "configmaps", "create") and allows(rules, "", "pods/log", "get")
        assert allows(rules, "", "secrets", "get", name=operator_env(result)["LLMSIM_OPERATOR_CA_SECRET"])
        assert not allows(rules, "", "secrets", "get", name="app-db-password")
    # injection follows the permissions: only the watched namespaces
    env = operator_env(result)
    assert env["LLMSIM_OPERATOR_INJECT_NAMESPACES"] == "apps,ml"
    for hook in result.one("MutatingWebhookConfiguration")["webhooks"]:
        terms = hook["namespaceSelector"]["matchExpressions"]
        assert {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["apps", "ml"]} in terms


def test_injected_namespaces_get_the_ca_secret_and_no_reconciling(cases: dict[str, Any]) -> None:
    result = cases["watched-and-injected"]
    assert _role_namespaces(result) == {helmrender.NAMESPACE, "apps", "web"}
    web = rules_of(result, "Role", "web")
    ca = operator_env(result)["LLMSIM_OPERATOR_CA_SECRET"]
    assert allows(web, "", "secrets", "create") and allows(web, "", "secrets", "patch", name=ca)
    assert not allows(web, "", "configmaps", "create") and not allows(web, "batch", "jobs", "create")
    assert not allows(web, "", "pods/log", "get")
    assert operator_env(result)["LLMSIM_OPERATOR_INJECT_NAMESPACES"] == "apps,web"


def test_cluster_wide_rules_only_when_asked(cases: dict[str, Any], rendered: dict[str, Any]) -> None:
    for result in (cases["watched-cluster-asked"], rendered["default"]):
        cluster = rules_of(result, "ClusterRole")
        for group, resource, verb in NAMESPACED_KINDS_CLUSTER_WIDE:
            assert allows(cluster, group, resource, verb), (resource, verb)
    assert operator_env(cases["watched-cluster-asked"])["LLMSIM_OPERATOR_INJECT_NAMESPACES"] == ""


def test_nothing_in_kube_system_unless_listed(cases: dict[str, Any]) -> None:
    for name in ("watched", "watched-and-injected"):
        assert not any(o["metadata"].get("namespace") == "kube-system" for o in cases[name].objects), name
    listed = cases["kube-system-listed"]
    assert "kube-system" in _role_namespaces(listed)
    # listed to reconcile, but still excluded from injection: no CA Secret rights there
    assert not allows(rules_of(listed, "Role", "kube-system"), "", "secrets", "create")
    assert operator_env(listed)["LLMSIM_OPERATOR_INJECT_NAMESPACES"] == "apps"


def test_namespaced_rbac_without_namespaces_is_refused(cases: dict[str, Any]) -> None:
    assert isinstance(cases["namespaced-without-namespaces"], helmrender.HelmRenderError)
    assert "operator.watchNamespaces" in str(cases["namespaced-without-namespaces"])
    assert isinstance(cases["bad-scope"], helmrender.HelmRenderError)
