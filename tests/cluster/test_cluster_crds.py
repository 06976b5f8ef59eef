"""The generated CRDs in a real API server: they are established and structural, `kubectl explain`
documents them, `kubectl get` shows the printer columns, status is a subresource, and invalid
objects are rejected by the API server itself, with messages that name the field: the structural
schema (types, enums, bounds, unknown fields, the distribution unions) and every CEL rule
(a case per rule; a test fails when a rule has none)."""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from controlplane import ApiError
from kubeapi import PROFILES, SCENARIOS, Kube, path
from pydantic import BaseModel

from llmsim.api import distributions, scenario
from llmsim.api.resources import API_KEY_IN_A_SECRET

REPO = Path(__file__).resolve().parents[2]
CRDS = {
    "simulationprofiles": REPO / "crds" / "llmsim.io_simulationprofiles.yaml",
    "loadscenarios": REPO / "crds" / "llmsim.io_loadscenarios.yaml",
}
KIND = {"simulationprofiles": "SimulationProfile", "loadscenarios": "LoadScenario"}
RESOURCE = {"simulationprofiles": PROFILES, "loadscenarios": SCENARIOS}

PROFILE_SPEC: dict[str, Any] = {"provider": "openai", "mode": "simulate"}
SCENARIO_SPEC: dict[str, Any] = {
    "target": {"url": "http://llmsim.team-a.svc:8080", "provider": "openai", "model": "gpt-4o-mini"},
    "durationS": 30,
    "pattern": {"type": "steady", "rps": 2},
}


def crd_rules() -> set[tuple[str, str, str]]:
    """(plural, field path, message) of every CEL rule in the generated CRDs."""
    found: set[tuple[str, str, str]] = set()

    def walk(plural: str, node: dict[str, Any], where: str) -> None:
        for rule in node.get("x-kubernetes-validations") or []:
            found.add((plural, where, rule["message"]))
        for key, child in (node.get("properties") or {}).items():
            walk(plural, child, f"{where}.{key}" if where else key)
        if isinstance(node.get("items"), dict):
            walk(plural, node["items"], f"{where}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(plural, node["additionalProperties"], f"{where}{{}}")
        for branch in node.get("oneOf") or []:
            walk(plural, branch, where)

    for plural, file in CRDS.items():
        crd = yaml.safe_load(file.read_text())
        walk(plural, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    return found


INVERTED_CLAMP = {"type": "constant", "value": 10, "min": 50, "max": 5}
LOW_ABOVE_HIGH = {"type": "uniform", "low": 100, "high": 10}
DISTRIBUTION_FIELDS = {
    "simulationprofiles": [
        *(f"spec.latency.{f}" for f in ("ttftMs", "itlMs", "tokensPerSecond", "outputTokens")),
        "spec.streaming.geminiChunkTokens",
    ],
    "loadscenarios": [f"spec.requests.{f}" for f in ("promptTokens", "maxTokens")],
}


def variants(union: Any) -> list[type[BaseModel]]:
    return list(typing.get_args(typing.get_args(union)[0]))


def required_fields(model: type[BaseModel]) -> list[str]:
    return sorted(
        f.alias or name for name, f in model.model_fields.items() if f.is_required() and name != "type"
    )


def nest(field: str, value: Any) -> dict[str, Any]:
    """`spec.a.b` = value, as a spec fragment."""
    keys = field.split(".")[1:]
    fragment: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        fragment = {key: fragment}
    return fragment


def union_cases() -> dict[tuple[str, str, str], tuple[dict[str, Any], str]]:
    """Each variant of a discriminated union without its required fields, per union-typed field
    (variants and their required fields from the models, not from the CRD)."""
    unions = [(plural, field, distributions.Distribution) for plural, fields in DISTRIBUTION_FIELDS.items()
              for field in fields] + [("loadscenarios", "spec.pattern", scenario.Pattern)]  # fmt: skip
    cases = {}
    for plural, field, union in unions:
        for model in variants(union):
            tag = model.model_fields["type"].default
            needs = required_fields(model)
            if needs:
                message = f"type {tag} needs " + (
                    needs[0] if len(needs) == 1 else ", ".join(needs[:-1]) + " and " + needs[-1]
                )
                cases[(plural, field, message)] = (nest(field, {"type": tag}), field)
    for plural, fields in DISTRIBUTION_FIELDS.items():
        for field in fields:  # an exponential's mean must be positive, a normal's may be 0
            cases[(plural, field, "type exponential: mean must be > 0")] = (
                nest(field, {"type": "exponential", "mean": 0}),
                field,
            )
    return cases


# (plural, field path, message) -> (an offending spec fragment merged into a valid spec, the field path
# the API server names in its error: a list item shows its index).
CEL_CASES: dict[tuple[str, str, str], tuple[dict[str, Any], str]] = {
    **union_cases(),
    **{
        (plural, field, message): (nest(field, fragment), field)
        for plural, fields in DISTRIBUTION_FIELDS.items()
        for field in fields
        for message, fragment in (("min must not exceed max", INVERTED_CLAMP), ("high must be >= low", LOW_ABOVE_HIGH))
    },
    ("simulationprofiles", "spec.content", "mode 'fixed' needs `text`"): (
        {"content": {"mode": "fixed"}}, "spec.content",
    ),
    ("simulationprofiles", "spec.content.rules[]", "give exactly one of reply or toolCall"): (
        {"content": {"rules": [{"match": "hello", "reply": "hi", "toolCall": {"name": "f"}}]}},
        "spec.content.rules[0]",
    ),
    ("simulationprofiles", "spec.faults.rates", "keys must be one of 'rate_limit', 'quota', 'overloaded', "
     "'server_error', 'timeout', 'context_length', 'disconnect', 'slow_stream', 'malformed_chunk', "
     "'midstream_error', 'authentication', 'permission', 'content_filter', 'refusal', 'prompt_filter', "
     "'none'"): (
        {"faults": {"rates": {"rate_limitt": 0.1}}}, "spec.faults.rates",
    ),
    ("simulationprofiles", "spec.faults.windows[]", "everyS must be >= durationS"): (
        {"faults": {"windows": [{"fault": "overloaded", "startS": 0, "durationS": 60, "everyS": 30}]}},
        "spec.faults.windows[0]",
    ),
    ("simulationprofiles", "spec.faults.windows[]", "fault 'none' makes no sense in a window"): (
        {"faults": {"windows": [{"fault": "none", "durationS": 10}]}}, "spec.faults.windows[0]",
    ),
    ("simulationprofiles", "spec.faults.windows[]", "give cron or everyS, not both"): (
        {"faults": {"windows": [{"fault": "overloaded", "cron": "0 * * * *", "durationS": 60, "everyS": 3600}]}},
        "spec.faults.windows[0]",
    ),
    ("simulationprofiles", "spec.faults.windows[]", "give startS (relative) or startAt (absolute), not both"): (
        {"faults": {"windows": [{"fault": "overloaded", "startAt": "2026-03-02T14:00:00Z", "startS": 5,
                                 "durationS": 60}]}},
        "spec.faults.windows[0]",
    ),
    ("simulationprofiles", "spec.faults.windows[]", "startS does not apply to cron (use startAt to delay the first firing)"): (
        {"faults": {"windows": [{"fault": "overloaded", "cron": "0 * * * *", "startS": 5, "durationS": 60}]}},
        "spec.faults.windows[0]",
    ),
    ("simulationprofiles", "spec.faults.windows[]", "timeZone applies to cron only; startAt carries its own offset"): (
        {"faults": {"windows": [{"fault": "overloaded", "startAt": "2026-03-02T14:00:00Z", "timeZone": "UTC",
                                 "durationS": 60}]}},
        "spec.faults.windows[0]",
    ),
    ("simulationprofiles", "spec.faults.rateLimits", "set requestsPerMinute and/or tokensPerMinute (or drop "
     "rateLimits)"): (
        {"faults": {"rateLimits": {"burstS": 5}}}, "spec.faults.rateLimits",
    ),
    ("loadscenarios", "spec", API_KEY_IN_A_SECRET): (
        {"target": {**SCENARIO_SPEC["target"], "apiKey": {"env": "OPENAI_API_KEY"}}}, "spec",
    ),
    ("loadscenarios", "spec.target.apiKey", "give exactly one of env or file"): (
        {"target": {**SCENARIO_SPEC["target"], "apiKey": {"env": "KEY", "file": "/run/key"}}},
        "spec.target.apiKey",
    ),
    ("loadscenarios", "spec.pattern", "shape values must be in [0, 1]"): (
        {"pattern": {"type": "diurnal", "peakRps": 5, "shape": [0.5, 1.5]}}, "spec.pattern",
    ),
    ("loadscenarios", "spec.pattern", "burstShare + lullShare must not exceed 1"): (
        {"pattern": {"type": "chaos", "meanRps": 5, "burstShare": 0.7, "lullShare": 0.6}}, "spec.pattern",
    ),
    ("loadscenarios", "spec.requests", "give templates or promptsFile, not both"): (
        {"requests": {"templates": [{"text": "hi"}],
                      "promptsFile": "/data/prompts.jsonl"}},
        "spec.requests",
    ),
    ("loadscenarios", "spec.slos[]", "percentile is required for latency metrics and not allowed for error_rate"): (
        {"slos": [{"metric": "ttft_ms", "threshold": 800}]}, "spec.slos[0]",
    ),
}  # fmt: skip


def resource_body(plural: str, name: str, spec_override: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(PROFILE_SPEC if plural == "simulationprofiles" else SCENARIO_SPEC)
    spec.update(spec_override)
    return {
        "apiVersion": "llmsim.io/v1alpha1",
        "kind": KIND[plural],
        "metadata": {"name": name},
        "spec": spec,
    }


def rejected(kube: Kube, plural: str, namespace: str, body: dict[str, Any], strict: bool = False) -> ApiError:
    """The API server's refusal: 422 Invalid (schema, CEL), or 400 for a strict-decoding error."""
    query = "?fieldValidation=Strict" if strict else ""
    with pytest.raises(ApiError) as info:
        kube.plane.request("POST", path(RESOURCE[plural], namespace) + query, body)
    assert info.value.status == (400 if strict else 422), info.value
    return info.value


def test_every_cel_rule_has_a_case() -> None:
    assert crd_rules() == set(CEL_CASES)


def test_the_crds_are_established_structural_and_served_with_a_status_subresource(kube: Kube) -> None:
    for plural in CRDS:
        crd = kube.get("apiextensions.k8s.io/v1/customresourcedefinitions", None, f"{plural}.llmsim.io")
        conditions = {cond["type"]: cond["status"] for cond in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True"
        assert conditions.get("NamesAccepted") == "True"
        assert "NonStructuralSchema" not in conditions
        (version,) = crd["spec"]["versions"]
        assert version["subresources"] == {"status": {}}
    resources = kube.plane.request("GET", "/apis/llmsim.io/v1alpha1")["resources"]
    names = {r["name"]: r for r in resources}
    assert {
        "simulationprofiles",
        "simulationprofiles/status",
        "loadscenarios",
        "loadscenarios/status",
    } <= set(names)
    assert names["simulationprofiles"]["shortNames"] == ["simprofile"]
    assert names["simulationprofiles"]["categories"] == ["llmsim"]


@pytest.mark.parametrize("case", sorted(CEL_CASES), ids=lambda c: f"{c[0]}:{c[1]}:{c[2][:40]}")
def test_the_api_server_enforces_each_cel_rule_naming_the_field(
    kube: Kube, namespace: str, case: tuple[str, str, str]
) -> None:
    plural, _, message = case
    fragment, field = CEL_CASES[case]
    error = rejected(kube, plural, namespace, resource_body(plural, "bad", fragment))
    assert f"{field}: Invalid value" in error.message and message in error.message, error.message
    # The same object without the offending fragment is accepted: the rule, not something else, refused it.
    kube.create(RESOURCE[plural], namespace, resource_body(plural, "good", {}), dry_run=True)


STRUCTURAL_CASES = {
    "type": ({"seed": "seven"}, 'spec.seed: Invalid value: "string": spec.seed in body must be of type integer'),
    "enum": ({"mode": "imitate"}, 'spec.mode: Unsupported value: "imitate"'),
    "maximum": ({"percentage": 150}, "spec.percentage: Invalid value: 150: spec.percentage in body should be less than or equal to 100"),
    "union-discriminator": ({"latency": {"ttftMs": {"type": "bimodal", "value": 3}}}, "spec.latency.ttftMs.type"),
    "nested-bound": ({"latency": {"ttftMs": {"type": "lognormal", "median": 300, "sigma": 9}}}, "spec.latency.ttftMs.sigma: Invalid value: 9"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(STRUCTURAL_CASES))
def test_the_structural_schema_rejects_bad_fields_by_name(kube: Kube, namespace: str, case: str) -> None:
    fragment, expected = STRUCTURAL_CASES[case]
    error = rejected(
        kube, "simulationprofiles", namespace, resource_body("simulationprofiles", "bad", fragment)
    )
    assert expected in error.message, error.message


def test_unknown_fields_are_rejected_under_strict_field_validation(kube: Kube, namespace: str) -> None:
    """kubectl validates strictly by default; what a client sends unvalidated is pruned, not stored."""
    body = resource_body("simulationprofiles", "typo", {"latncy": {}})
    error = rejected(kube, "simulationprofiles", namespace, body, strict=True)
    assert 'unknown field "spec.latncy"' in error.message, error.message
    stored = kube.create(PROFILES, namespace, body)
    assert "latncy" not in stored["spec"]


def test_kubectl_rejects_an_invalid_manifest_with_the_field_named(kube: Kube, namespace: str) -> None:
    manifest = yaml.safe_dump(
        resource_body("simulationprofiles", "bad", {"latency": {"ttftMs": INVERTED_CLAMP}})
    )
    result = kube.plane.kubectl("apply", "-n", namespace, "-f", "-", input_text=manifest, check=False)
    assert result.returncode != 0
    assert (
        "spec.latency.ttftMs: Invalid value" in result.stderr and "min must not exceed max" in result.stderr
    )


def test_status_is_a_subresource(kube: Kube, namespace: str) -> None:
    created = kube.create(PROFILES, namespace, resource_body("simulationprofiles", "sub", {}))
    assert created["metadata"]["generation"] == 1
    # Through the main resource a status is ignored...
    after = kube.patch(PROFILES, namespace, "sub", {"status": {"phase": "Ready"}})
    assert "status" not in after or after["status"].get("phase") != "Ready"
    # ...through /status it is stored, and does not bump the generation; a spec change does.
    after = kube.patch(PROFILES, namespace, "sub", {"status": {"phase": "Ready", "pods": 3}}, sub="status")
    assert after["status"]["phase"] == "Ready" and after["metadata"]["generation"] == 1
    after = kube.patch(PROFILES, namespace, "sub", {"spec": {"seed": 3}})
    assert after["metadata"]["generation"] == 2
    # The status schema is enforced as well.
    with pytest.raises(ApiError) as info:
        kube.patch(PROFILES, namespace, "sub", {"status": {"phase": "Sleeping"}}, sub="status")
    assert 'status.phase: Unsupported value: "Sleeping"' in info.value.message


def test_kubectl_explain_documents_the_fields(kube: Kube) -> None:
    out = kube.plane.kubectl("explain", "simulationprofile.spec.latency").stdout
    assert "KIND:       SimulationProfile" in out and "GROUP:      llmsim.io" in out
    for field in ("ttftMs", "itlMs", "tokensPerSecond", "outputTokens"):
        assert field in out
    assert "Time to first token" in out
    deep = kube.plane.kubectl("explain", "loadscenario.spec.pattern.type").stdout
    assert "FIELD: type <string>" in deep


def test_kubectl_get_shows_the_printer_columns(kube: Kube, namespace: str) -> None:
    kube.create(PROFILES, namespace, resource_body("simulationprofiles", "columns", {"paused": True}))
    kube.patch(PROFILES, namespace, "columns", {"status": {"pods": 2, "conditions": [
        {"type": "Ready", "status": "True", "reason": "Rendered", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
        sub="status")  # fmt: skip
    scenario = resource_body("loadscenarios", "columns", {"schedule": "0 2 * * *"})
    kube.create(SCENARIOS, namespace, scenario)
    kube.patch(SCENARIOS, namespace, "columns", {"status": {"phase": "Succeeded", "slo": "Met",
               "summary": {"achievedRps": 1.5, "ttftMs": {"p95": 812.5}}}}, sub="status")  # fmt: skip

    def table(*args: str) -> list[list[str]]:
        out = kube.plane.kubectl("get", *args, "-n", namespace).stdout
        return [line.split() for line in out.strip().splitlines()]

    header, row = table("simprofile")
    assert header == ["NAME", "PROVIDER", "MODE", "READY", "AGE"]
    assert row[:4] == ["columns", "openai", "simulate", "True"]
    header, row = table("simprofile", "-o", "wide")
    assert header == ["NAME", "PROVIDER", "MODE", "READY", "PODS", "PAUSED", "NEXT-WINDOW", "AGE"]
    assert row[:6] == ["columns", "openai", "simulate", "True", "2", "true"]
    assert len(row) == 7  # NEXT-WINDOW is blank: the profile has no windows
    header, row = table("loadscenario")
    assert header == ["NAME", "PATTERN", "PHASE", "RPS", "TTFT-P95", "SLO", "AGE"]
    assert row[:6] == ["columns", "steady", "Succeeded", "1.5", "812.5", "Met"]
    header, row = table("loadscenario", "-o", "wide")
    assert header[-2:] == ["SCHEDULE", "AGE"] and " ".join(row).count("0 2 * * *") == 1
    # Both kinds are in the `llmsim` category.
    listed = kube.plane.kubectl("get", "llmsim", "-n", namespace, "-o", "json").stdout
    assert sorted(item["kind"] for item in json.loads(listed)["items"]) == [
        "LoadScenario",
        "SimulationProfile",
    ]
