"""The chart installs for its default values and every ci/ scenario, and every object it creates
(hooks included) is a valid manifest for the oldest and newest supported Kubernetes."""

from __future__ import annotations

from typing import Any

import helmrender
import pytest
from chartcases import REFUSED, SCENARIOS
from manifests import NO_SCHEMA_KINDS, VERSIONS, CrdSchemas, kind_key, project_crds, validation_errors


@pytest.fixture(scope="module")
def crds() -> CrdSchemas:
    return project_crds()


def test_helm_lint_reports_no_warnings_or_errors(batch: dict[str, Any]) -> None:
    lint = batch["lint"]
    assert lint["TotalChartsLinted"] == 1
    assert not lint["Errors"]
    severe = [m for m in lint["Messages"] or [] if m["Severity"] >= 2]  # 1 info, 2 warning, 3 error
    assert severe == []


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_manifest_validates(
    rendered: dict[str, helmrender.Rendered], crds: CrdSchemas, scenario: str, version: str
) -> None:
    problems: dict[str, list[str]] = {}
    for obj in rendered[scenario].all_manifests:
        errors = validation_errors(obj, version, crds)
        if errors:
            problems[f"{obj['kind']}/{obj['metadata']['name']}"] = errors
    assert problems == {}


def test_only_known_third_party_kinds_go_without_a_schema(
    rendered: dict[str, helmrender.Rendered], crds: CrdSchemas
) -> None:
    unvalidated = {
        kind_key(obj)
        for result in rendered.values()
        for obj in result.all_manifests
        if validation_errors(obj, VERSIONS[-1], crds) is None
    }
    # Each of these is rendered by some scenario and checked structurally in test_chart_objects.py.
    assert unvalidated == NO_SCHEMA_KINDS


def test_the_oldest_supported_kubernetes_installs_the_chart(batch: dict[str, Any]) -> None:
    assert isinstance(batch["oldest"], helmrender.Rendered)
    assert batch["oldest"].find("MutatingWebhookConfiguration")


@pytest.mark.parametrize("case", list(REFUSED))
def test_helm_refuses_unsupported_clusters_and_invalid_values(batch: dict[str, Any], case: str) -> None:
    result = batch["refused"][case]
    assert isinstance(result, helmrender.HelmRenderError), f"{case}: Helm installed it"


def test_refusals_name_the_problem(batch: dict[str, Any]) -> None:
    refused = batch["refused"]
    assert "kubeVersion" in str(refused["kubernetes-1.28"])
    assert "replica" in str(refused["unknown-value"])
    assert "failurePolicy" in str(refused["bad-failure-policy"])


def test_the_release_namespace_is_used_everywhere(batch: dict[str, Any]) -> None:
    other: helmrender.Rendered = batch["other-namespace"]
    namespaced = [o for o in other.objects if o["kind"] not in {"CustomResourceDefinition", "ClusterRole",
                                                                  "ClusterRoleBinding", "ClusterKopfPeering",
                                                                  "MutatingWebhookConfiguration"}]  # fmt: skip
    assert namespaced
    assert {o["metadata"]["namespace"] for o in namespaced} == {"platform-tools"}
