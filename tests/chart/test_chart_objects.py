"""What the chart creates besides the webhook: CRDs, RBAC, the operator Deployment, peering,
availability, networking, monitoring and the `helm test` hook."""

from __future__ import annotations

import filecmp
from typing import Any

import helmrender
import pytest
from chartcases import SCENARIOS, operator_env
from kopf._cogs.structs import references

from llmsim_operator import constants
from llmsim_operator.resources import sidecar
from llmsim_operator.settings import OperatorSettings

CHART_CRDS = helmrender.CHART / "crds"
TOP_CRDS = helmrender.REPO / "crds"


def test_the_chart_ships_the_generated_crds_unchanged() -> None:
    generated = sorted(p.name for p in TOP_CRDS.glob("*.yaml"))
    assert generated, "crds/ is empty: run `make crds`"
    shipped = sorted(p.name for p in CHART_CRDS.glob("*.yaml"))
    assert shipped == sorted([*generated, "kopf-peering.yaml"])
    for name in generated:
        assert filecmp.cmp(TOP_CRDS / name, CHART_CRDS / name, shallow=False), (
            f"{name} differs: run `make crds`"
        )


def test_the_peering_crds_are_the_ones_kopf_looks_for(rendered: dict[str, helmrender.Rendered]) -> None:
    crds = {c["metadata"]["name"]: c["spec"] for c in rendered["default"].find("CustomResourceDefinition")}
    for selector, scope in (
        (references.CLUSTER_PEERINGS_K, "Cluster"),
        (references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ):
        spec = crds[f"{selector.any_name}.{selector.group}"]
        assert spec["scope"] == scope
        assert [v["name"] for v in spec["versions"]] == [selector.version]


def test_cluster_wide_peering_by_default(rendered: dict[str, helmrender.Rendered]) -> None:
    result = rendered["default"]
    env = operator_env(result)
    assert result.one("ClusterKopfPeering")["metadata"]["name"] == env["LLMSIM_OPERATOR_PEERING"]
    assert env["LLMSIM_OPERATOR_STANDALONE"] == "false"
    assert result.one("Deployment")["spec"]["replicas"] == 2


def test_namespaced_peering_where_the_operator_is_restricted(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    result = rendered["restricted-values.yaml"]
    assert result.find("ClusterKopfPeering") == []
    peerings = result.find("KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]


def test_a_single_standalone_replica_has_no_peering_and_no_disruption_budget(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    result = rendered["single-replica-values.yaml"]
    assert operator_env(result)["LLMSIM_OPERATOR_STANDALONE"] == "true"
    assert result.find("ClusterKopfPeering") == [] and result.find("KopfPeering") == []
    assert result.find("PodDisruptionBudget") == []
    pdb = rendered["default"].one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    labels = rendered["default"].one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def rules_of(result: helmrender.Rendered, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        rule
        for role in result.find(kind)
        if namespace is None or role["metadata"].get("namespace") == namespace
        for rule in role["rules"]
    ]


def allows(
    rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str | None = None
) -> bool:
    return any(
        group in r["apiGroups"]
        and resource in r["resources"]
        and verb in r["verbs"]
        and (not r.get("resourceNames") or name in r["resourceNames"])
        for r in rules
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rbac_has_no_wildcards_and_reads_no_arbitrary_secret(
    rendered: dict[str, helmrender.Rendered], scenario: str
) -> None:
    result = rendered[scenario]
    if not result.find("ClusterRole"):
        return
    cluster = rules_of(result, "ClusterRole")
    for rule in cluster + rules_of(result, "Role"):
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
    for verb in ("get", "list", "watch"):
        assert not allows(cluster, "", "secrets", verb, name="some-app-secret"), verb
    env = operator_env(result)
    injected = [n for n in env["LLMSIM_OPERATOR_INJECT_NAMESPACES"].split(",") if n]
    ca = env["LLMSIM_OPERATOR_CA_SECRET"]
    if any("configmaps" in r["resources"] for r in cluster):
        assert allows(cluster, "", "secrets", "get", name=ca)  # cluster scope: every namespace
    else:  # namespaced scope: in each injected namespace, by name
        assert injected and not allows(cluster, "", "secrets", "get", name=ca)
        for injected_namespace in injected:
            assert allows(rules_of(result, "Role", injected_namespace), "", "secrets", "get", name=ca)
    namespace = env["LLMSIM_OPERATOR_NAMESPACE"]
    assert allows(
        rules_of(result, "Role", namespace),
        "",
        "secrets",
        "get",
        name=env["LLMSIM_OPERATOR_WEBHOOK_TLS_SECRET"],
    )


def test_cluster_wide_operator_reconciles_everywhere(rendered: dict[str, helmrender.Rendered]) -> None:
    cluster = rules_of(rendered["default"], "ClusterRole")
    assert allows(cluster, constants.GROUP, constants.PROFILES, "watch")
    assert allows(cluster, constants.GROUP, f"{constants.SCENARIOS}/status", "patch")
    assert allows(cluster, "batch", "jobs", "create")
    assert allows(cluster, "kopf.dev", "clusterkopfpeerings", "patch")
    env = operator_env(rendered["default"])
    assert allows(cluster, "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch",
                  name=env["LLMSIM_OPERATOR_WEBHOOK_CONFIGURATION"])  # fmt: skip
    assert not allows(
        cluster, "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch", name="other"
    )


def test_restricted_operator_gets_namespaced_roles_only_where_it_reconciles(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    result = rendered["restricted-values.yaml"]
    cluster = rules_of(result, "ClusterRole")
    assert not allows(cluster, constants.GROUP, constants.PROFILES, "watch")
    assert not allows(cluster, "", "configmaps", "create")
    assert not allows(cluster, "batch", "jobs", "create")
    for namespace in ("team-a", "team-b"):
        rules = rules_of(result, "Role", namespace)
        assert allows(rules, constants.GROUP, constants.PROFILES, "watch")
        assert allows(rules, "batch", "jobs", "create")
        assert allows(rules, "kopf.dev", "kopfpeerings", "patch")
        binding = next(b for b in result.find("RoleBinding") if b["metadata"]["namespace"] == namespace)
        assert binding["subjects"][0]["namespace"] == helmrender.NAMESPACE


def test_cert_manager_mode_does_not_let_the_operator_touch_the_webhook_configuration(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    cluster = rules_of(rendered["cert-manager-values.yaml"], "ClusterRole")
    assert not any("mutatingwebhookconfigurations" in r["resources"] for r in cluster)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_operator_pod_is_locked_down(rendered: dict[str, helmrender.Rendered], scenario: str) -> None:
    result = rendered[scenario]
    pod = result.one("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts  # the only writable path: certificates, HOME, temporary files
    assert operator_env(result)["LLMSIM_OPERATOR_WEBHOOK_CERT_DIR"].startswith("/tmp/")
    assert {v["name"] for v in pod["volumes"]} >= set(mounts.values())
    assert pod["serviceAccountName"] == result.one("ServiceAccount")["metadata"]["name"]
    annotations = result.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations[constants.INJECT_ANNOTATION] == "false"


def test_images_and_pull_settings_follow_the_values(rendered: dict[str, helmrender.Rendered]) -> None:
    result = rendered["private-registry-values.yaml"]
    pod = result.one("Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == ("registry.example.com/llmsim/operator@sha256:" + "0" * 63 + "1")
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    assert all(
        o["metadata"]["labels"]["team"] == "platform"
        for o in result.objects
        if o["kind"] != "CustomResourceDefinition"
    )
    default = rendered["default"].one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert default["image"] == "llmsim/operator:0.1.0"


def test_network_policy_admits_the_webhook_and_metrics_and_limits_egress(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    result = rendered["network-policy-values.yaml"]
    policy = result.one("NetworkPolicy")
    ports = {
        p["name"] for p in result.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == ports == {"webhook", "metrics"}
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    api = policy["spec"]["egress"][1]
    assert [t["ipBlock"]["cidr"] for t in api["to"]] == ["10.96.0.1/32", "172.18.0.2/32"]
    assert rendered["default"].find("NetworkPolicy") == []


def test_monitors_scrape_ports_that_exist(rendered: dict[str, helmrender.Rendered]) -> None:
    result = rendered["monitoring-values.yaml"]
    service_monitor = result.one("ServiceMonitor")
    assert service_monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selected = [
        s for s in result.find("Service")
        if service_monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]  # fmt: skip
    assert [s["metadata"]["name"] for s in selected] == [f"{helmrender.RELEASE}-metrics"]
    assert service_monitor["spec"]["endpoints"][0]["port"] in {
        p["name"] for p in selected[0]["spec"]["ports"]
    }
    pod_monitor = result.one("PodMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {constants.INJECTED_LABEL: "true"}
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "llmsim-admin"
    assert pod_monitor["spec"]["namespaceSelector"] == {"matchNames": ["staging", "checkout"]}
    assert rendered["default"].find("ServiceMonitor") == rendered["default"].find("PodMonitor") == []


def test_the_sidecar_admin_port_name_is_the_one_the_pod_monitor_scrapes() -> None:

    container = sidecar.container("proxy", OperatorSettings(), "p", native=True)  # type: ignore[arg-type]
    assert {"name": "llmsim-admin", "containerPort": constants.ADMIN_PORT, "protocol": "TCP"} in container[
        "ports"
    ]


def test_metrics_off_removes_the_metrics_service_and_port(rendered: dict[str, helmrender.Rendered]) -> None:
    result = rendered["metrics-off-values.yaml"]
    assert [s["metadata"]["name"] for s in result.find("Service")] == [f"{helmrender.RELEASE}-webhook"]
    container = result.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert [p["name"] for p in container["ports"]] == ["webhook"]
    assert "tcpSocket" in container["livenessProbe"]
    assert result.hooks == []


def test_the_chart_test_checks_the_webhook_it_was_installed_with(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    result = rendered["default"]
    env = operator_env(result)
    hooks = {h["kind"]: h for h in result.hooks}
    assert all(h["metadata"]["annotations"]["helm.sh/hook"] == "test" for h in result.hooks)
    pod = hooks["Pod"]
    assert pod["metadata"]["labels"][constants.INJECT_ANNOTATION] == "false"
    assert pod["metadata"]["annotations"][constants.INJECT_ANNOTATION] == "false"
    check_env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert check_env["WEBHOOK_HOST"] == f"{env['LLMSIM_OPERATOR_WEBHOOK_SERVICE']}.{helmrender.NAMESPACE}.svc"
    assert check_env["WEBHOOK_CONFIGURATION"] == env["LLMSIM_OPERATOR_WEBHOOK_CONFIGURATION"]
    assert hooks["ClusterRole"]["rules"][0]["resourceNames"] == [env["LLMSIM_OPERATOR_WEBHOOK_CONFIGURATION"]]
    compile(hooks["ConfigMap"]["data"]["check.py"], "check.py", "exec")


def test_notes_tell_the_user_what_to_do_next(rendered: dict[str, helmrender.Rendered]) -> None:
    notes = rendered["default"].notes
    assert "kubectl label namespace my-app llmsim.io/inject=enabled" in notes
    assert f"helm test {helmrender.RELEASE}" in notes
    assert "kube-system" in notes and helmrender.NAMESPACE in notes
    assert "llmsim.io/profile" not in rendered["restricted-values.yaml"].notes
