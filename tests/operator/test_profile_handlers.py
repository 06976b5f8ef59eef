"""SimulationProfile reconciliation, in-process against the kmock emulator."""

from __future__ import annotations

import base64
from typing import Any

import yaml

from conftest import (
    CONFIGMAPS,
    MERGE,
    NS,
    PODS,
    PROFILES,
    SECRETS,
    create,
    events_for,
    new_object,
    url,
    wait_for,
)
from llmsim.profiles import load_text

CM = "llmsim-profile-drill-cfg"


def profile(name: str = "drill", **spec: Any) -> dict[str, Any]:
    return new_object("SimulationProfile", "llmsim.io/v1alpha1", name, spec)


def status_of(cluster: Any, name: str = "drill") -> dict[str, Any]:
    out: dict[str, Any] = cluster.objects[PROFILES, NS, name].get("status", {})
    return out


def condition(cluster: Any, type_: str, name: str = "drill") -> dict[str, Any]:
    return next(c for c in status_of(cluster, name)["conditions"] if c["type"] == type_)


async def test_a_valid_profile_is_rendered_into_an_owned_config_map(cluster: Any, operator: Any) -> None:
    body = profile(provider="openai", mode="perturb", percentage=10, durationS=3600, extends=[])
    await create(cluster, PROFILES, body)
    await wait_for(lambda: status_of(cluster)["phase"] == "Ready")

    st = status_of(cluster)
    assert st["observedGeneration"] == 1 and st["configMap"] == CM
    assert (
        condition(cluster, "Ready")["status"] == "True" and condition(cluster, "Invalid")["status"] == "False"
    )
    # durationS is made absolute from the creation time, for every sidecar alike.
    assert st["expiresAt"] == "2026-11-26T13:00:00Z"

    cm = cluster.objects[CONFIGMAPS, NS, CM]
    [owner] = cm["metadata"]["ownerReferences"]
    assert (
        owner["kind"] == "SimulationProfile"
        and owner["uid"] == body["metadata"]["uid"]
        and owner["controller"]
    )
    # The sidecar reads exactly this file with the same loader.
    rendered = load_text(cm["data"]["profile.yaml"], "cm", "x")
    assert rendered.name == "drill" and rendered.spec.percentage == 10 and rendered.spec.mode == "perturb"
    assert rendered.spec.until is not None and rendered.spec.until.isoformat() == "2026-11-26T13:00:00+00:00"
    await wait_for(lambda: events_for(cluster, "drill"))
    assert [e["reason"] for e in events_for(cluster, "drill")] == ["Ready"]

    # The namespace's CA Secret exists, with the signing key for the sidecar and the public files.
    secret = cluster.objects[SECRETS, NS, "llmsim-ca"]
    assert {"llmsim-ca.pem", "llmsim-ca-cert.pem", "bundle.pem", "truststore.p12"} <= set(secret["data"])
    assert b"PRIVATE KEY" in base64.b64decode(secret["data"]["llmsim-ca.pem"])


async def test_an_update_re_renders_the_config_map(cluster: Any, operator: Any) -> None:
    await create(cluster, PROFILES, profile(provider="openai", durationS=60))
    await wait_for(lambda: status_of(cluster)["phase"] == "Ready")
    assert status_of(cluster)["expiresAt"]

    patch = {
        "metadata": {"generation": 2},
        "spec": {"provider": "anthropic", "paused": True, "durationS": None},
    }
    rsp = await cluster.patch(url(PROFILES, name="drill"), json=patch, headers=MERGE)
    assert rsp.status == 200, await rsp.text()

    def rerendered() -> bool:
        doc = yaml.safe_load(cluster.objects[CONFIGMAPS, NS, CM]["data"]["profile.yaml"])
        return bool(doc["spec"]["provider"] == "anthropic" and doc["spec"]["paused"] is True)

    await wait_for(rerendered)
    await wait_for(lambda: status_of(cluster)["observedGeneration"] == 2)
    assert "expiresAt" not in status_of(cluster)
    await wait_for(lambda: "Updated" in [e["reason"] for e in events_for(cluster, "drill")])


async def test_an_invalid_spec_is_reported_with_the_offending_field(cluster: Any, operator: Any) -> None:
    await create(
        cluster, PROFILES, profile(percentage=150, latency={"ttftMs": {"type": "lognormal", "median": 5}})
    )
    await wait_for(lambda: status_of(cluster)["phase"] == "Invalid")

    invalid = condition(cluster, "Invalid")
    assert invalid["status"] == "True" and invalid["reason"] == "InvalidSpec"
    assert (
        "spec.percentage" in invalid["message"]
        and "spec.latency.ttftMs.lognormal.sigma" in invalid["message"]
    )
    assert condition(cluster, "Ready")["status"] == "False"
    await wait_for(lambda: [e for e in events_for(cluster, "drill") if e["reason"] == "InvalidSpec"])
    [event] = [e for e in events_for(cluster, "drill") if e["reason"] == "InvalidSpec"]
    assert event["type"] == "Warning" and "spec.percentage" in event["message"]
    assert (CONFIGMAPS, NS, CM) not in cluster.objects


async def test_deletion_removes_the_config_map_and_warns_about_running_pods(
    cluster: Any, operator: Any
) -> None:
    await create(cluster, PROFILES, profile())
    await wait_for(lambda: status_of(cluster)["phase"] == "Ready")
    pod = new_object(
        "Pod",
        "v1",
        "chat-0",
        {"containers": [{"name": "app", "image": "app"}, {"name": "llmsim-proxy", "image": "sidecar"}]},
        annotations={"llmsim.io/injected": "drill"},
    )
    await create(cluster, PODS, pod)
    await wait_for(lambda: status_of(cluster)["pods"] == 1)

    rsp = await cluster.delete(url(PROFILES, name="drill"))
    assert rsp.status == 200, await rsp.text()
    await wait_for(lambda: cluster.objects[PROFILES, NS, "drill"].deleted)
    assert cluster.objects[CONFIGMAPS, NS, CM].deleted
    await wait_for(lambda: any(e["reason"] == "DeletedWhileInUse" for e in events_for(cluster, "drill")))
    warning = next(e for e in events_for(cluster, "drill") if e["reason"] == "DeletedWhileInUse")
    assert (
        warning["type"] == "Warning" and "1 pod(s)" in warning["message"] and "chat-0" in warning["message"]
    )


async def test_pods_that_asked_for_the_profile_but_lack_the_sidecar_are_counted_and_flagged(
    cluster: Any, operator: Any
) -> None:
    await create(cluster, PROFILES, profile())
    await wait_for(lambda: status_of(cluster)["phase"] == "Ready")
    bare = {"containers": [{"name": "app", "image": "app"}]}
    await create(
        cluster, PODS, new_object("Pod", "v1", "missed", bare, annotations={"llmsim.io/profile": "drill"})
    )
    opted_out = {"llmsim.io/profile": "drill", "llmsim.io/inject": "false"}
    await create(cluster, PODS, new_object("Pod", "v1", "optout", bare, annotations=opted_out))

    await wait_for(lambda: status_of(cluster)["podsMissingSidecar"] == 1)
    assert status_of(cluster)["pods"] == 0
    await wait_for(lambda: events_for(cluster, "missed"))
    [event] = events_for(cluster, "missed")
    assert event["type"] == "Warning" and event["reason"] == "SidecarMissing"
    assert events_for(cluster, "optout") == []
