"""Sidecar injection with the API server calling the webhook over TLS (the chart's
MutatingWebhookConfiguration, its caBundle written by the operator): the namespace label, the pod
annotation, opting out, a pod that sets proxy and CA variables itself, re-invocation after another
webhook, dry-run creates and every capture mode. The pod the API server stores validates (it stored
it) and carries exactly the sidecar the operator's settings describe."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from cluster_objects import INJECT, app_pod, profile, ready, sidecars
from kubeapi import PODS, PROFILES, WEBHOOKS, Kube
from operator_proc import OperatorProcess
from second_webhook import ENV as SECOND_ENV
from second_webhook import NAME as SECOND_NAME
from second_webhook import SecondWebhook

from llmsim_operator import constants as c
from llmsim_operator import injection
from llmsim_operator.profile_cache import profile_info
from llmsim_operator.settings import OperatorSettings


def env_of(pod: dict[str, Any], container: str = "app") -> dict[str, str | None]:
    (ct,) = [ct for ct in pod["spec"]["containers"] if ct["name"] == container]
    return {e["name"]: e.get("value") for e in ct.get("env") or []}


def is_subset(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where `actual` (as stored, with the API server's defaults) differs from `expected`."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [d for k, v in expected.items() for d in is_subset(v, actual.get(k), f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in is_subset(e, a, f"{where}[{i}]")
        ]
    return [] if expected == actual else [f"{where}: expected {expected!r}, stored {actual!r}"]


def expected_pod(
    operator: OperatorProcess, kube: Kube, namespace: str, sent: dict[str, Any], opted_in: bool
) -> dict[str, Any]:
    """What the operator's settings and the namespace's profiles say the admitted pod must be."""
    settings = OperatorSettings(**{k.removeprefix("LLMSIM_OPERATOR_").lower(): v for k, v in operator.environment.items()
                                   if k.startswith("LLMSIM_OPERATOR_")})  # fmt: skip
    profiles = [profile_info(p) for p in kube.list(PROFILES, namespace)]
    pod = copy.deepcopy(sent)
    pod["metadata"]["namespace"] = namespace
    decision = injection.decide(pod, namespace, opted_in, profiles, settings)
    assert decision.inject, decision.reason
    return injection.mutate(pod, decision, settings)


@pytest.fixture()
def injecting(kube: Kube, operator: OperatorProcess) -> Callable[..., None]:
    """Create a profile and wait until the webhook injects with it (the replica's profile cache
    follows the status a moment after the API server has it): dry-run probes, nothing stored."""

    def make(namespace: str, name: str = "default", opted_in: bool = False, **spec: Any) -> None:
        kube.create(PROFILES, namespace, profile(name, **spec))
        ready(kube, namespace, name)
        annotations = {} if opted_in else {c.PROFILE_ANNOTATION: name}
        probe = app_pod("probe", annotations, labels=(spec.get("selector") or {}).get("matchLabels"))
        kube.wait(
            lambda: sidecars(kube.create(PODS, namespace, probe, dry_run=True)), f"webhook injects {name}"
        )

    return make


def test_every_pod_of_a_labelled_namespace_is_injected_exactly_as_specified(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], new_namespace: Callable[..., str]
) -> None:
    namespace = new_namespace("labelled", **INJECT)
    injecting(namespace, "default", opted_in=True)
    sent = app_pod("web")
    stored = kube.create(PODS, namespace, sent)
    assert stored["status"]["phase"] == "Pending"  # no kubelet: stored and admitted, never run
    (proxy,) = sidecars(stored)
    assert (
        proxy["restartPolicy"] == "Always"
        and proxy["image"] == operator.environment["LLMSIM_OPERATOR_SIDECAR_IMAGE"]
    )
    assert stored["metadata"]["annotations"][c.INJECTED_ANNOTATION] == "default"
    assert stored["metadata"]["labels"][c.INJECTED_LABEL] == "true"
    assert env_of(stored)["HTTPS_PROXY"] == "http://127.0.0.1:15080"
    expected = expected_pod(operator, kube, namespace, sent, opted_in=True)
    assert [ct["name"] for ct in stored["spec"]["initContainers"]] == [
        ct["name"] for ct in expected["spec"]["initContainers"]
    ]
    assert is_subset(expected["spec"], stored["spec"]) == []
    assert is_subset(expected["metadata"], stored["metadata"]) == []


def test_an_annotated_pod_is_injected_with_its_profile_elsewhere(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], namespace: str
) -> None:
    injecting(namespace, "drill")
    stored = kube.create(PODS, namespace, app_pod("chat", {c.PROFILE_ANNOTATION: "drill"}))
    assert len(sidecars(stored)) == 1
    volume = next(v for v in stored["spec"]["volumes"] if v["name"] == c.VOLUME_PROFILE)
    assert volume["configMap"]["name"] == "llmsim-profile-drill-cfg"
    plain = kube.create(PODS, namespace, app_pod("plain"))  # no annotation, namespace not labelled
    assert sidecars(plain) == [] and c.INJECTED_ANNOTATION not in (plain["metadata"].get("annotations") or {})


@pytest.mark.parametrize(
    ("annotations", "labels"),
    [
        pytest.param({c.INJECT_ANNOTATION: "false"}, None, id="annotation-inject-false"),
        pytest.param({}, {"app": "chat", c.INJECT_ANNOTATION: "false"}, id="label-inject-false"),
    ],
)
def test_a_pod_that_opts_out_is_not_injected(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], new_namespace: Callable[..., str],
    annotations: dict[str, str], labels: dict[str, str] | None,
) -> None:  # fmt: skip
    namespace = new_namespace("optout", **INJECT)
    injecting(namespace, "default", opted_in=True)
    stored = kube.create(PODS, namespace, app_pod("shy", annotations, labels))
    assert sidecars(stored) == [] and "initContainers" not in stored["spec"]


def test_a_pod_that_sets_its_own_proxy_and_ca_variables_keeps_them(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], namespace: str
) -> None:
    injecting(namespace, "drill")
    own = [
        {"name": "HTTPS_PROXY", "value": "http://corporate-proxy:3128"},
        {"name": "NO_PROXY", "value": "internal.example.com"},
        {"name": "SSL_CERT_FILE", "value": "/etc/ssl/mine.pem"},
    ]
    stored = kube.create(PODS, namespace, app_pod("own-env", {c.PROFILE_ANNOTATION: "drill"}, env=own))
    env = env_of(stored)
    assert env["HTTPS_PROXY"] == "http://corporate-proxy:3128" and env["SSL_CERT_FILE"] == "/etc/ssl/mine.pem"
    assert env["NO_PROXY"] is not None and env["NO_PROXY"].startswith("internal.example.com,localhost")
    assert (
        env["HTTP_PROXY"] == "http://127.0.0.1:15080"
        and env["REQUESTS_CA_BUNDLE"] == "/etc/llmsim/trust/bundle.pem"
    )
    names = [e["name"] for ct in stored["spec"]["containers"] for e in ct.get("env") or []]
    assert len(names) == len(set(names))  # nothing twice


def test_the_webhook_is_re_invoked_after_another_webhook_and_changes_nothing_twice(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], namespace: str, tmp_path: Any
) -> None:
    injecting(namespace, "drill")
    pod = app_pod("twice", {c.PROFILE_ANNOTATION: "drill"})
    with SecondWebhook(tmp_path) as second:
        second.register(kube, namespace)
        try:

            def second_called() -> bool:
                kube.create(PODS, namespace, pod, dry_run=True)
                return second.calls > 0

            kube.wait(second_called, "the API server calls the second webhook")
            before = operator.injections()
            stored = kube.create(PODS, namespace, pod)
        finally:
            kube.delete(WEBHOOKS, None, SECOND_NAME)
    assert SECOND_ENV in [e for ct in stored["spec"]["containers"] for e in ct.get("env") or []]
    assert operator.injections() - before == 2  # llmsim's webhook ran again after the second one...
    assert len(sidecars(stored)) == 1  # ...and added nothing twice
    for ct in stored["spec"]["containers"] + stored["spec"]["initContainers"]:
        names = [e["name"] for e in ct.get("env") or []]
        assert len(names) == len(set(names)), ct["name"]
    assert len({v["name"] for v in stored["spec"]["volumes"]}) == len(stored["spec"]["volumes"])


def test_a_dry_run_create_is_injected_and_not_stored(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], namespace: str
) -> None:
    injecting(namespace, "drill")
    answer = kube.create(PODS, namespace, app_pod("dry", {c.PROFILE_ANNOTATION: "drill"}), dry_run=True)
    assert len(sidecars(answer)) == 1
    assert kube.find(PODS, namespace, "dry") is None


@pytest.mark.parametrize("capture", [m.value for m in injection.Capture])
def test_each_capture_mode_yields_a_pod_the_api_server_accepts(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], namespace: str, capture: str
) -> None:
    injecting(namespace, "drill", interceptHosts=["llm-gateway.internal:443"])
    sent = app_pod("captured", {c.PROFILE_ANNOTATION: "drill", c.CAPTURE_ANNOTATION: capture})
    stored = kube.create(PODS, namespace, sent)
    assert len(sidecars(stored)) == 1
    expected = expected_pod(operator, kube, namespace, sent, opted_in=False)
    assert is_subset(expected["spec"], stored["spec"]) == []
    env = env_of(stored)
    if capture == "proxy":
        assert env["HTTPS_PROXY"] == "http://127.0.0.1:15080"
    elif capture == "base-url":
        assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:15080/v1" and "HTTPS_PROXY" not in env
    elif capture == "host-alias":
        (alias,) = stored["spec"]["hostAliases"]
        assert alias["ip"] == "127.0.0.1" and {"api.openai.com", "llm-gateway.internal"} <= set(
            alias["hostnames"]
        )
        sysctls = {s["name"]: s["value"] for s in stored["spec"]["securityContext"]["sysctls"]}
        assert sysctls["net.ipv4.ip_unprivileged_port_start"] == "443"
    else:
        iptables = next(ct for ct in stored["spec"]["initContainers"] if ct["name"] == c.IPTABLES_INIT_NAME)
        assert set(iptables["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}


def test_a_classic_sidecar_is_a_regular_container(
    kube: Kube, operator: OperatorProcess, injecting: Callable[..., None], namespace: str
) -> None:
    injecting(namespace, "drill")
    stored = kube.create(
        PODS,
        namespace,
        app_pod("classic", {c.PROFILE_ANNOTATION: "drill", c.SIDECAR_MODE_ANNOTATION: "classic"}),
    )
    assert [ct["name"] for ct in stored["spec"]["containers"]] == ["app", c.SIDECAR_NAME]
    assert stored["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "app"
