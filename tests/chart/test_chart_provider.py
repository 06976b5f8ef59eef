"""The chart's optional simulated provider (values `provider.*`): nothing by default; when enabled a
ConfigMap with the profile as a SimulationProfile document, a Deployment of `llmsim serve` reading
it (rolled by a checksum when the profile changes, never injected, LLMSIM_REDIS_URL only when set)
and a Service selecting exactly its pods. The cluster drill tests/cluster/test_cluster_drills_provider.py
runs it."""

from __future__ import annotations

from typing import Any

import helmrender
import pytest
import yaml

from llmsim import profiles

PROFILE = {"provider": "openai", "latency": {"ttftMs": {"type": "constant", "value": 50}}}


def enabled(**provider: Any) -> helmrender.Rendered:
    return helmrender.render({"provider": {"enabled": True, "profile": PROFILE, **provider}})


def test_no_provider_unless_enabled() -> None:
    rendered = helmrender.render()
    assert [
        o
        for o in rendered.objects
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "provider"
    ] == []


def test_an_enabled_provider_serves_its_profile_behind_a_service() -> None:
    rendered = enabled(replicas=2, redisUrl="redis://redis:6379/0")
    config = rendered.one("ConfigMap", "llmsim-provider")
    doc = yaml.safe_load(config["data"]["profile.yaml"])
    assert doc["kind"] == "SimulationProfile" and doc["spec"] == PROFILE
    assert profiles.parse_spec(doc["spec"], "rendered") is not None
    deployment = rendered.one("Deployment", "llmsim-provider")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"][:1] == ["serve"] and "/etc/llmsim/provider/profile.yaml" in container["args"]
    assert container["env"] == [{"name": "LLMSIM_REDIS_URL", "value": "redis://redis:6379/0"}]
    assert pod["metadata"]["annotations"]["llmsim.io/inject"] == "false"
    service = rendered.one("Service", "llmsim-provider")
    assert service["spec"]["ports"][0]["port"] == 80
    selector = service["spec"]["selector"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())
    operator = rendered.one("Deployment", "llmsim")
    assert not all(
        operator["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items()
    )


def test_no_redis_variable_without_a_url_and_a_new_profile_rolls_the_pods() -> None:
    first = enabled().one("Deployment", "llmsim-provider")["spec"]["template"]
    assert "env" not in first["spec"]["containers"][0]
    other = helmrender.render({"provider": {"enabled": True, "profile": {**PROFILE, "seed": 3}}})
    second = other.one("Deployment", "llmsim-provider")["spec"]["template"]
    key = "llmsim.io/profile-checksum"
    assert first["metadata"]["annotations"][key] != second["metadata"]["annotations"][key]


def test_a_bad_redis_url_is_refused_naming_the_value() -> None:
    with pytest.raises(helmrender.HelmRenderError, match="redisUrl"):
        enabled(redisUrl="localhost:6379")
