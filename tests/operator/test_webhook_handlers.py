"""The injection webhooks over HTTP: real admission.k8s.io/v1 AdmissionReviews, patches applied."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import kubernetes_validate
import pytest

from conftest import NS, PROFILES, create, new_object, wait_for
from llmsim_operator import constants as c
from llmsim_operator.webhook_server import with_request_namespace

ROOT = Path(__file__).resolve().parents[2]


def review(pod: dict[str, Any], namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def app_pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A pod as a ReplicaSet controller sends it: generateName, no namespace in the object."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "chat-7d9f-",
            "labels": {"app": "chat"},
            "annotations": annotations or {},
        },
        "spec": {"containers": [{"name": "app", "image": "python:3.12"}], **spec},
    }


async def post_review(port: int, path: str, body: dict[str, Any], within: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:  # the webhook server starts after the initial resource scan
            try:
                async with session.post(f"http://127.0.0.1:{port}{path}", json=body) as rsp:
                    assert rsp.status == 200, await rsp.text()
                    out: dict[str, Any] = await rsp.json()
                    return out
            except aiohttp.ClientConnectorError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


def patched(sent: dict[str, Any], result: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    response = result["response"]
    assert response["uid"] == sent["request"]["uid"] and response["allowed"] is True
    if "patch" not in response:
        return sent["request"]["object"], []
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    pod = jsonpatch.apply_patch(sent["request"]["object"], ops)
    # What the API server stores: the namespace from the URL, a name from generateName.
    complete = json.loads(json.dumps(pod))
    complete["metadata"].update(name="chat-7d9f-x2p4q", namespace=NS)
    kubernetes_validate.validate(complete, "1.37.0", strict=True)
    return pod, ops


async def ready_profile(cluster: Any, port: int, name: str = "drill", **spec: Any) -> None:
    """Create a profile and wait until the webhook knows it is Ready (kopf's index follows the
    status a moment after the API server has it)."""
    await create(cluster, PROFILES, new_object("SimulationProfile", "llmsim.io/v1alpha1", name, spec))
    await wait_for(lambda: cluster.objects[PROFILES, NS, name]["status"]["phase"] == "Ready")
    probe = app_pod({c.PROFILE_ANNOTATION: name})
    probe["metadata"]["labels"] = dict((spec.get("selector") or {}).get("matchLabels") or {})
    deadline = time.monotonic() + 5
    while "patch" not in (await post_review(port, f"/{c.INJECT_POD_WEBHOOK_ID}", review(probe)))["response"]:
        assert time.monotonic() < deadline, f"the webhook never saw profile {name} Ready"
        await asyncio.sleep(0.02)


async def test_an_annotated_pod_is_injected_and_stays_valid(
    cluster: Any, operator: Any, webhook_port: int
) -> None:
    await ready_profile(cluster, webhook_port)
    env = [
        {"name": "NO_PROXY", "value": "internal.example.com"},
        {"name": "SSL_CERT_FILE", "value": "/mine.pem"},
    ]
    inits = [{"name": "migrate", "image": "app:1", "command": ["migrate"]}]
    pod = app_pod({c.PROFILE_ANNOTATION: "drill"}, initContainers=inits)
    pod["spec"]["containers"][0]["env"] = env
    sent = review(pod)
    out, ops = patched(sent, await post_review(webhook_port, f"/{c.INJECT_POD_WEBHOOK_ID}", sent))

    assert ops and not any(op["path"].startswith("/metadata/namespace") for op in ops)
    names = [i["name"] for i in out["spec"]["initContainers"]]
    assert names == [c.CA_INIT_NAME, c.SIDECAR_NAME, "migrate"]
    app_env = {e["name"]: e.get("value") for e in out["spec"]["containers"][0]["env"]}
    assert app_env["NO_PROXY"].startswith("internal.example.com,localhost")
    assert app_env["SSL_CERT_FILE"] == "/mine.pem" and app_env["HTTPS_PROXY"] == "http://127.0.0.1:15080"
    profile_volume = next(v for v in out["spec"]["volumes"] if v["name"] == c.VOLUME_PROFILE)
    assert profile_volume["configMap"]["name"] == "llmsim-profile-drill-cfg"

    # Re-invocation (reinvocationPolicy: IfNeeded) over the injected pod changes nothing.
    again = review(out)
    result = await post_review(webhook_port, f"/{c.INJECT_POD_WEBHOOK_ID}", again)
    assert result["response"]["allowed"] is True and "patch" not in result["response"]


async def test_capture_mode_annotation_and_other_sidecars(
    cluster: Any, operator: Any, webhook_port: int
) -> None:
    await ready_profile(cluster, webhook_port)
    inits = [{"name": "istio-proxy", "image": "istio/proxyv2", "restartPolicy": "Always"}]
    pod = app_pod({c.PROFILE_ANNOTATION: "drill", c.CAPTURE_ANNOTATION: "base-url"}, initContainers=inits)
    sent = review(pod)
    out, _ = patched(sent, await post_review(webhook_port, f"/{c.INJECT_POD_WEBHOOK_ID}", sent))
    assert [i["name"] for i in out["spec"]["initContainers"]] == [
        c.CA_INIT_NAME,
        c.SIDECAR_NAME,
        "istio-proxy",
    ]
    app_env = {e["name"]: e.get("value") for e in out["spec"]["containers"][0]["env"]}
    assert app_env["OPENAI_BASE_URL"] == "http://127.0.0.1:15080/v1" and "HTTPS_PROXY" not in app_env


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        ({c.PROFILE_ANNOTATION: "drill", c.INJECT_ANNOTATION: "false"}, "opted out"),
        ({c.PROFILE_ANNOTATION: "missing"}, "unknown profile"),
        ({}, "no annotation"),
    ],
)
async def test_pods_that_must_not_be_injected_are_admitted_unchanged(
    cluster: Any, operator: Any, webhook_port: int, annotations: dict[str, str], reason: str
) -> None:
    await ready_profile(cluster, webhook_port)
    sent = review(app_pod(annotations))
    _, ops = patched(sent, await post_review(webhook_port, f"/{c.INJECT_POD_WEBHOOK_ID}", sent))
    assert ops == [], reason


async def test_the_namespace_webhook_uses_the_selecting_or_default_profile(
    cluster: Any, operator: Any, webhook_port: int
) -> None:
    await ready_profile(cluster, webhook_port, "default")
    await ready_profile(cluster, webhook_port, "chat-only", selector={"matchLabels": {"app": "chat"}})
    sent = review(app_pod())
    out, _ = patched(sent, await post_review(webhook_port, f"/{c.INJECT_NAMESPACE_WEBHOOK_ID}", sent))
    assert out["metadata"]["annotations"][c.INJECTED_ANNOTATION] == "chat-only"
    # The pod-annotation webhook ignores unannotated pods in other namespaces.
    sent = review(app_pod())
    _, ops = patched(sent, await post_review(webhook_port, f"/{c.INJECT_POD_WEBHOOK_ID}", sent))
    assert ops == []


async def test_a_kube_system_pod_is_never_injected(cluster: Any, operator: Any, webhook_port: int) -> None:
    await ready_profile(cluster, webhook_port)
    sent = review(app_pod({c.PROFILE_ANNOTATION: "drill"}), namespace="kube-system")
    result = await post_review(webhook_port, f"/{c.INJECT_NAMESPACE_WEBHOOK_ID}", sent)
    assert result["response"]["allowed"] is True and "patch" not in result["response"]


def test_the_request_namespace_fills_a_missing_object_namespace_only() -> None:
    sent = review(app_pod(), namespace="team-b")
    assert with_request_namespace(sent)["request"]["object"]["metadata"]["namespace"] == "team-b"
    pod = app_pod()
    pod["metadata"]["namespace"] = "explicit"
    assert with_request_namespace(review(pod))["request"]["object"]["metadata"]["namespace"] == "explicit"


def test_the_charts_webhook_paths_equal_the_handler_ids() -> None:
    template = (ROOT / "charts" / "llmsim" / "templates" / "mutatingwebhookconfiguration.yaml").read_text()
    assert f'"/{c.INJECT_NAMESPACE_WEBHOOK_ID}"' in template
    assert f'"/{c.INJECT_POD_WEBHOOK_ID}"' in template
