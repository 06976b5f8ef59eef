"""Operator settings: every default pinned (the Helm chart maps its values onto these variables)."""

from __future__ import annotations

import pytest

from llmsim import __version__
from llmsim_operator.settings import OperatorSettings

DEFAULTS = {
    "namespace": "llmsim-system",
    "watch_namespaces": [],
    "inject_namespaces": [],
    "excluded_namespaces": ["kube-system", "kube-public", "kube-node-lease"],
    "sidecar_image": f"llmsim/sidecar:{__version__}",
    "sidecar_image_pull_policy": "IfNotPresent",
    "sidecar_mode": "native",
    "default_capture": "proxy",
    "sidecar_cpu_request": "50m",
    "sidecar_memory_request": "64Mi",
    "sidecar_cpu_limit": "500m",
    "sidecar_memory_limit": "256Mi",
    "extra_no_proxy": [],
    "loadgen_image": f"llmsim/sidecar:{__version__}",
    "job_backoff_limit": 1,
    "webhook_addr": "0.0.0.0",
    "webhook_port": 9443,
    "webhook_insecure": False,
    "webhook_service": "llmsim-webhook",
    "webhook_url": "",
    "webhook_configuration": "llmsim-sidecar-injector",
    "webhook_tls_secret": "llmsim-webhook-tls",
    "webhook_cert_dir": "/tmp/llmsim-webhook",
    "webhook_cert_days": 90,
    "ca_secret": "llmsim-ca",
    "ca_days": 365,
    "renew_before_days": 30,
    "rotation_check_interval_s": 3600.0,
    "pods_resync_interval_s": 30.0,
    "scenario_poll_interval_s": 10.0,
    "peering": "llmsim",
    "standalone": False,
    "peering_priority": None,
    "metrics_port": 8080,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LLMSIM_OPERATOR_"):
            monkeypatch.delenv(key)


def test_defaults_are_pinned() -> None:
    assert OperatorSettings().model_dump() == DEFAULTS


def test_every_field_is_documented() -> None:
    assert all(field.description for field in OperatorSettings.model_fields.values())


def test_lists_come_as_comma_separated_strings_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSIM_OPERATOR_INJECT_NAMESPACES", " team-a, team-b ,")
    monkeypatch.setenv("LLMSIM_OPERATOR_EXTRA_NO_PROXY", '[".corp", "10.0.0.0/8"]')
    monkeypatch.setenv("LLMSIM_OPERATOR_WATCH_NAMESPACES", "")
    settings = OperatorSettings()
    assert settings.inject_namespaces == ["team-a", "team-b"]
    assert settings.extra_no_proxy == [".corp", "10.0.0.0/8"]
    assert settings.watch_namespaces == []


def test_bad_values_are_rejected_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSIM_OPERATOR_SIDECAR_MODE", "sidecarless")
    with pytest.raises(ValueError, match="sidecar_mode"):
        OperatorSettings()


def test_injection_allow_list_and_exclusions() -> None:
    settings = OperatorSettings(inject_namespaces=["a", "kube-system"], namespace="ops")
    assert settings.may_inject("a") and not settings.may_inject("b")
    assert not settings.may_inject("kube-system") and not OperatorSettings(namespace="ops").may_inject("ops")
