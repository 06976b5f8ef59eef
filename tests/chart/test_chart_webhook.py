"""The MutatingWebhookConfiguration: paths equal the operator's kopf handler ids, the selectors express
"namespace label OR pod annotation" with two webhooks, and it fails open and stays out of the
system namespaces."""

from __future__ import annotations

from typing import Any

import helmrender
import pytest
from chartcases import SCENARIOS, called_webhooks, merged_values, namespace_labels, operator_env

from llmsim_operator import constants

NAMESPACE_HOOK = "namespace.inject.llmsim.io"
POD_HOOK = "pod.inject.llmsim.io"


def path_of(webhook_name: str) -> str:
    return {
        NAMESPACE_HOOK: f"/{constants.INJECT_NAMESPACE_WEBHOOK_ID}",
        POD_HOOK: f"/{constants.INJECT_POD_WEBHOOK_ID}",
    }[webhook_name]


def config_of(result: helmrender.Rendered) -> dict[str, Any]:
    return result.one("MutatingWebhookConfiguration")


def hook(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(h for h in config["webhooks"] if h["name"] == name)


def test_webhook_paths_are_the_kopf_handler_ids(rendered: dict[str, helmrender.Rendered]) -> None:
    config = config_of(rendered["default"])
    paths = {h["name"]: h["clientConfig"]["service"]["path"] for h in config["webhooks"]}
    assert paths == {
        NAMESPACE_HOOK: f"/{constants.INJECT_NAMESPACE_WEBHOOK_ID}",
        POD_HOOK: f"/{constants.INJECT_POD_WEBHOOK_ID}",
    }
    assert set(paths.values()) == constants.WEBHOOK_PATHS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_webhooks_point_at_the_operator_webhook_server(
    rendered: dict[str, helmrender.Rendered], scenario: str
) -> None:
    result = rendered[scenario]
    env = operator_env(result)
    config = config_of(result)
    assert config["metadata"]["name"] == env["LLMSIM_OPERATOR_WEBHOOK_CONFIGURATION"]
    service = result.one("Service", env["LLMSIM_OPERATOR_WEBHOOK_SERVICE"])
    deployment = result.one("Deployment")
    ports = {
        p["name"]: p["containerPort"]
        for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    url = merged_values(scenario)["webhook"]["url"]
    for h in config["webhooks"]:
        if url:  # an operator outside the cluster: the URL plus the handler's path, no Service
            assert h["clientConfig"] == {"url": url.rstrip("/") + path_of(h["name"])}
            assert env["LLMSIM_OPERATOR_WEBHOOK_URL"] == url
            continue
        ref = h["clientConfig"]["service"]
        assert ref["path"] == path_of(h["name"])
        assert (ref["name"], ref["namespace"]) == (
            service["metadata"]["name"],
            service["metadata"]["namespace"],
        )
        service_port = next(p for p in service["spec"]["ports"] if p["port"] == ref["port"])
        assert ports[service_port["targetPort"]] == int(env["LLMSIM_OPERATOR_WEBHOOK_PORT"])
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_defaults_fail_open_reinvoke_and_time_out_quickly(rendered: dict[str, helmrender.Rendered]) -> None:
    for h in config_of(rendered["default"])["webhooks"]:
        assert h["failurePolicy"] == "Ignore"
        assert h["reinvocationPolicy"] == "IfNeeded"
        assert h["timeoutSeconds"] <= 10
        assert h["sideEffects"] == "None"
        assert h["rules"] == [
            {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"],
             "scope": "Namespaced"}
        ]  # fmt: skip


def test_a_labelled_namespace_calls_only_the_namespace_webhook(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    config = config_of(rendered["default"])
    labels = namespace_labels("shop", **{"llmsim.io/inject": "enabled"})
    assert called_webhooks(config, labels, {"app": "web"}) == [NAMESPACE_HOOK]


def test_other_namespaces_call_only_the_pod_annotation_webhook(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    config = config_of(rendered["default"])
    assert called_webhooks(config, namespace_labels("shop"), {"app": "web"}) == [POD_HOOK]
    disabled = namespace_labels("shop", **{"llmsim.io/inject": "disabled"})
    assert called_webhooks(config, disabled, {}) == [POD_HOOK]


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", helmrender.NAMESPACE])
def test_system_and_release_namespaces_never_call_the_webhook(
    rendered: dict[str, helmrender.Rendered], namespace: str
) -> None:
    config = config_of(rendered["default"])
    labelled = namespace_labels(namespace, **{"llmsim.io/inject": "enabled"})
    assert called_webhooks(config, labelled, {}) == []
    assert called_webhooks(config, namespace_labels(namespace), {}) == []


def test_pods_labelled_opted_out_are_not_even_sent(rendered: dict[str, helmrender.Rendered]) -> None:
    config = config_of(rendered["default"])
    labelled = namespace_labels("shop", **{"llmsim.io/inject": "enabled"})
    assert called_webhooks(config, labelled, {"llmsim.io/inject": "false"}) == []
    assert called_webhooks(config, namespace_labels("shop"), {"llmsim.io/inject": "false"}) == []


def test_the_injection_allow_list_narrows_the_selectors(rendered: dict[str, helmrender.Rendered]) -> None:
    config = config_of(rendered["restricted-values.yaml"])
    assert [h["name"] for h in config["webhooks"]] == [NAMESPACE_HOOK]  # podAnnotation: false
    enabled = {"llmsim.io/inject": "enabled"}
    assert called_webhooks(config, namespace_labels("team-a", **enabled), {}) == [NAMESPACE_HOOK]
    assert called_webhooks(config, namespace_labels("team-b", **enabled), {}) == []
    assert called_webhooks(config, namespace_labels("monitoring", **enabled), {}) == []
    assert hook(config, NAMESPACE_HOOK)["failurePolicy"] == "Fail"
    assert hook(config, NAMESPACE_HOOK)["reinvocationPolicy"] == "Never"
    assert hook(config, NAMESPACE_HOOK)["timeoutSeconds"] == 3


def test_the_operator_keeps_the_ca_bundle_unless_cert_manager_does(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    default = config_of(rendered["default"])
    assert "cert-manager.io/inject-ca-from" not in default["metadata"]["annotations"]
    assert all("caBundle" not in h["clientConfig"] for h in default["webhooks"])
    result = rendered["cert-manager-values.yaml"]
    env = operator_env(result)
    annotation = config_of(result)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    namespace, name = annotation.split("/")
    certificate = result.one("Certificate", name)
    assert certificate["metadata"]["namespace"] == namespace
    assert certificate["spec"]["secretName"] == env["LLMSIM_OPERATOR_WEBHOOK_TLS_SECRET"]
    service = env["LLMSIM_OPERATOR_WEBHOOK_SERVICE"]
    assert f"{service}.{namespace}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == result.one("Issuer")["metadata"]["name"]
    assert "selfSigned" in result.one("Issuer")["spec"]


def test_an_existing_cluster_issuer_is_used_as_given(rendered: dict[str, helmrender.Rendered]) -> None:
    result = rendered["cert-manager-clusterissuer-values.yaml"]
    assert result.find("Issuer") == []
    certificate = result.one("Certificate")
    assert certificate["spec"]["issuerRef"] == {
        "name": "internal-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert certificate["spec"]["duration"] == "720h"
