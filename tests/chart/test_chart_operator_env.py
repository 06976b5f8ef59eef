"""Chart values map one-to-one onto the operator's settings (LLMSIM_OPERATOR_* variables)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import helmrender
import pytest
from chartcases import SCENARIOS, merged_values, operator_env

from llmsim_operator.settings import OperatorSettings

PREFIX = "LLMSIM_OPERATOR_"


def image(spec: dict[str, Any], fallback: dict[str, Any] | None = None) -> str:
    if not spec["repository"] and fallback is not None:
        return image(fallback)
    if spec["digest"]:
        return f"{spec['repository']}@{spec['digest']}"
    return f"{spec['repository']}:{spec['tag'] or '0.1.0'}"


VALUE_OF: dict[str, Callable[[dict[str, Any]], Any]] = {
    "watch_namespaces": lambda v: v["operator"]["watchNamespaces"],
    "inject_namespaces": lambda v: v["injection"]["namespaces"],
    "excluded_namespaces": lambda v: v["injection"]["excludedNamespaces"],
    "sidecar_image": lambda v: image(v["image"]["sidecar"]),
    "sidecar_image_pull_policy": lambda v: v["image"]["sidecar"]["pullPolicy"],
    "sidecar_mode": lambda v: v["sidecar"]["mode"],
    "default_capture": lambda v: v["sidecar"]["defaultCapture"],
    "sidecar_cpu_request": lambda v: v["sidecar"]["resources"]["requests"]["cpu"],
    "sidecar_memory_request": lambda v: v["sidecar"]["resources"]["requests"]["memory"],
    "sidecar_cpu_limit": lambda v: v["sidecar"]["resources"]["limits"]["cpu"],
    "sidecar_memory_limit": lambda v: v["sidecar"]["resources"]["limits"]["memory"],
    "extra_no_proxy": lambda v: v["sidecar"]["extraNoProxy"],
    "loadgen_image": lambda v: image(v["loadgen"]["image"], v["image"]["sidecar"]),
    "job_backoff_limit": lambda v: v["operator"]["jobBackoffLimit"],
    "webhook_port": lambda v: v["webhook"]["port"],
    "webhook_url": lambda v: v["webhook"]["url"],
    "webhook_cert_days": lambda v: v["webhook"]["certificate"]["days"],
    "ca_secret": lambda v: v["ca"]["secretName"],
    "ca_days": lambda v: v["ca"]["days"],
    "renew_before_days": lambda v: v["webhook"]["renewBeforeDays"],
    "rotation_check_interval_s": lambda v: v["webhook"]["rotationCheckIntervalS"],
    "pods_resync_interval_s": lambda v: v["operator"]["podsResyncIntervalS"],
    "scenario_poll_interval_s": lambda v: v["operator"]["scenarioPollIntervalS"],
    "standalone": lambda v: not v["operator"]["peering"]["enabled"],
    "peering_priority": lambda v: v["operator"]["peering"]["priority"],
    "metrics_port": lambda v: v["metrics"]["port"],
}
"""Settings that come from a chart value, and which one."""


def tls_secret_readable_by_the_operator(result: helmrender.Rendered) -> str:
    namespace = result.one("Deployment")["metadata"]["namespace"]
    role = next(r for r in result.find("Role") if r["metadata"]["namespace"] == namespace)
    (name,) = (
        n for rule in role["rules"] if "secrets" in rule["resources"] for n in rule.get("resourceNames", [])
    )
    return str(name)


def webhook_service(result: helmrender.Rendered) -> dict[str, Any]:
    """The Service in front of the operator's webhook port."""
    (service,) = (
        s for s in result.find("Service") if any(p["targetPort"] == "webhook" for p in s["spec"]["ports"])
    )
    return service


def peering_object(result: helmrender.Rendered) -> dict[str, Any]:
    return (result.find("ClusterKopfPeering") or result.find("KopfPeering"))[0]


FROM_THE_RELEASE: dict[str, Callable[[helmrender.Rendered], Any]] = {
    "namespace": lambda r: r.one("Deployment")["metadata"]["namespace"],
    "webhook_service": lambda r: webhook_service(r)["metadata"]["name"],
    "webhook_configuration": lambda r: r.one("MutatingWebhookConfiguration")["metadata"]["name"],
    "webhook_tls_secret": lambda r: tls_secret_readable_by_the_operator(r),
    "peering": lambda r: peering_object(r)["metadata"]["name"],
}
"""Settings the chart derives from the release (names of objects it creates), and where to see them."""

FIXED = {"webhook_addr": "0.0.0.0", "webhook_insecure": False, "webhook_cert_dir": "/tmp/llmsim-webhook"}
"""Settings the chart pins: listen on every interface, always TLS, certificates under the /tmp emptyDir."""


def test_every_setting_is_accounted_for_exactly_once() -> None:
    fields = set(OperatorSettings.model_fields)
    assert sorted(VALUE_OF.keys() | FROM_THE_RELEASE.keys() | FIXED.keys()) == sorted(fields)
    assert not (VALUE_OF.keys() & FROM_THE_RELEASE.keys() or VALUE_OF.keys() & FIXED.keys())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_deployment_sets_exactly_the_settings_variables(
    rendered: dict[str, helmrender.Rendered], scenario: str
) -> None:
    expected = {PREFIX + name.upper() for name in OperatorSettings.model_fields}
    if merged_values(scenario)["operator"]["peering"]["priority"] is None:
        expected.remove(PREFIX + "PEERING_PRIORITY")  # unset: each replica draws its own
    assert set(operator_env(rendered[scenario])) == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_values_reach_the_operator_settings(
    rendered: dict[str, helmrender.Rendered], scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in operator_env(rendered[scenario]).items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    values = merged_values(scenario)
    for field, value_of in VALUE_OF.items():
        assert getattr(settings, field) == value_of(values), field
    for field, fixed in FIXED.items():
        assert getattr(settings, field) == fixed, field
    for field, where in FROM_THE_RELEASE.items():
        if field == "peering" and settings.standalone:
            continue
        assert getattr(settings, field) == where(rendered[scenario]), field


def test_chart_defaults_match_the_operator_defaults(
    rendered: dict[str, helmrender.Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in operator_env(rendered["default"]).items():
        monkeypatch.setenv(name, value)
    from_chart = OperatorSettings().model_dump()
    for name in (*FROM_THE_RELEASE, "webhook_cert_dir"):
        from_chart.pop(name)
    monkeypatch.delenv(PREFIX + "NAMESPACE")
    for name in OperatorSettings.model_fields:
        monkeypatch.delenv(PREFIX + name.upper(), raising=False)
    defaults = OperatorSettings().model_dump()
    assert from_chart == {k: v for k, v in defaults.items() if k in from_chart}
