"""The generated CRDs and JSON Schemas: up to date, valid, structural, and faithful to the models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from llmsim import crdgen
from llmsim.api.profile import SimulationProfileSpec
from llmsim.api.resources import LoadScenarioResourceSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "crs").glob("llmsim.io_v1alpha1_*.yaml"))
K8S_VERSION = "1.37.0"


def crd(kind: str) -> dict[str, Any]:
    [match] = [k for k in crdgen.KINDS if k.kind == kind]
    return crdgen.build_crd(match)


def openapi(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def as_draft4(node: Any) -> Any:
    """OpenAPI v3.0 -> JSON Schema draft 4 (same boolean exclusiveMinimum); `nullable` -> a null type."""
    if isinstance(node, dict):
        out = {k: as_draft4(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [as_draft4(v) for v in node]
    return node


def validate_cr(doc: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(as_draft4(openapi(doc["kind"]))).validate(doc)


def walk(node: dict[str, Any], path: str, in_junctor: bool = False):  # type: ignore[no-untyped-def]
    yield path, node, in_junctor
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}", in_junctor)
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]", in_junctor)
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*", in_junctor)
    for junctor in ("oneOf", "anyOf", "allOf"):
        for i, branch in enumerate(node.get(junctor, [])):
            yield from walk(branch, f"{path}.{junctor}[{i}]", True)


def test_the_files_on_disk_are_what_the_models_generate() -> None:
    assert crdgen.stale(ROOT, crdgen.render()) == []


def test_check_mode_reports_a_stale_file_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    target = tmp_path / "crds" / "llmsim.io_simulationprofiles.yaml"
    target.write_text(target.read_text().replace("simprofile", "sp"))
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "crds/llmsim.io_simulationprofiles.yaml: 2 line(s) differ" in err
    assert "-    - sp" in err and "+    - simprofile" in err


def test_generated_files_carry_a_do_not_edit_header() -> None:
    for rel, text in crdgen.render().items():
        if rel.endswith(".yaml"):
            assert text.startswith("# Generated") and "DO NOT EDIT" in text.splitlines()[0]
        else:
            assert "Do not edit" in json.loads(text)["$comment"]


@pytest.mark.parametrize("kind", ["SimulationProfile", "LoadScenario"])
def test_crds_validate_as_apiextensions_v1(kind: str) -> None:
    kubernetes_validate.validate(crd(kind), K8S_VERSION, strict=True)


@pytest.mark.parametrize("kind", ["SimulationProfile", "LoadScenario"])
def test_schemas_are_structural(kind: str) -> None:
    forbidden_in_junctors = {"type", "description", "default", "additionalProperties", "nullable"}
    for path, node, in_junctor in walk(openapi(kind), kind):
        assert "$ref" not in node and "$defs" not in node, path
        assert "default" not in node, f"{path}: defaults would override `extends` presets"
        assert "const" not in node and "title" not in node, path
        if in_junctor:
            assert not forbidden_in_junctors & node.keys(), path
            continue
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path}: no type"
        for junctor in ("oneOf", "anyOf", "allOf"):
            for branch in node.get(junctor, []):
                assert set(branch.get("properties", {})) <= set(node.get("properties", {})), path
    assert not openapi(kind)["properties"]["spec"].get("x-kubernetes-preserve-unknown-fields")


def test_crd_names_columns_and_subresources_follow_the_contract() -> None:
    profile, scenario = crd("SimulationProfile"), crd("LoadScenario")
    assert profile["metadata"]["name"] == "simulationprofiles.llmsim.io"
    assert profile["spec"]["names"]["shortNames"] == ["simprofile"]
    assert scenario["spec"]["names"]["shortNames"] == ["loadscenario"]
    for doc in (profile, scenario):
        [version] = doc["spec"]["versions"]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
        assert doc["spec"]["scope"] == "Namespaced"
    columns = {c["name"]: c["jsonPath"] for c in profile["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert list(columns)[:3] == ["Provider", "Mode", "Ready"] and "Age" in columns
    columns = {c["name"]: c["jsonPath"] for c in scenario["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase" and columns["TTFT-P95"] == ".status.summary.ttftMs.p95"
    assert {"Pattern", "RPS", "SLO", "Age"} <= columns.keys()


def test_constraints_of_the_models_reach_the_schema() -> None:
    spec = openapi("SimulationProfile")["properties"]["spec"]["properties"]
    assert spec["provider"]["enum"] == ["any", "openai", "azure", "anthropic", "gemini", "ollama"]
    assert spec["percentage"] == {
        "description": spec["percentage"]["description"],
        "type": "number",
        "maximum": 100,
        "minimum": 0,
    }
    assert spec["durationS"]["minimum"] == 0 and spec["durationS"]["exclusiveMinimum"] is True
    assert spec["seed"]["type"] == "integer" and spec["seed"]["nullable"] is True
    assert spec["until"]["format"] == "date-time"
    window = spec["faults"]["properties"]["windows"]["items"]
    assert window["required"] == ["fault", "durationS"]
    assert any("everyS" in r["rule"] for r in window["x-kubernetes-validations"])
    rates = spec["faults"]["properties"]["rates"]
    assert rates["additionalProperties"] == {"type": "number"}
    assert "'rate_limit'" in rates["x-kubernetes-validations"][0]["rule"]
    arguments = spec["content"]["properties"]["rules"]["items"]["properties"]["toolCall"]["properties"][
        "arguments"
    ]
    assert arguments == {
        "description": arguments["description"],
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_discriminated_unions_keep_each_variants_own_constraints() -> None:
    ttft = openapi("SimulationProfile")["properties"]["spec"]["properties"]["latency"]["properties"]["ttftMs"]
    assert ttft["properties"]["type"]["enum"] == [
        "constant",
        "uniform",
        "normal",
        "lognormal",
        "gamma",
        "exponential",
        "empirical",
    ]
    # No `oneOf`: the API server would report the first branch's errors ("type: Unsupported value:
    # lognormal: supported values: constant") and skip the object's CEL rules. What each variant
    # requires is a CEL rule guarded by the discriminator (tests/cluster/test_cluster_crds.py has the API
    # server enforce every one).
    assert "oneOf" not in ttft
    rules = {r["message"]: r["rule"] for r in ttft["x-kubernetes-validations"]}
    assert rules["type lognormal needs median and sigma"] == (
        "self.type != 'lognormal' || has(self.median) && has(self.sigma)"
    )
    # `mean` is >= 0 for a normal but > 0 for an exponential: the shared field carries the common
    # minimum, the exponential's stricter bound is its own rule.
    assert ttft["properties"]["mean"]["minimum"] == 0 and "exclusiveMinimum" not in ttft["properties"]["mean"]
    assert rules["type exponential: mean must be > 0"] == (
        "self.type != 'exponential' || !has(self.mean) || self.mean > 0.0"
    )
    uniform_rule = rules["high must be >= low"]
    assert "self.type == 'constant'" in uniform_rule and "self.type == 'uniform'" not in uniform_rule


def test_every_cross_field_rule_targets_an_existing_model() -> None:
    names: set[str] = set()
    for kind in crdgen.KINDS:
        names |= set(kind.spec.model_json_schema(by_alias=True).get("$defs", {}))
    assert set(crdgen.CROSS_FIELD_RULES) <= names


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("SimulationProfile", {"percentage": 120}, "percentage"),
        ("SimulationProfile", {"mode": "chaos"}, "mode"),
        ("SimulationProfile", {"faults": {"windows": [{"fault": "quota"}]}}, "durationS"),
        ("LoadScenario", {"parallelism": 0}, "parallelism"),
        ("LoadScenario", {"schedule": "every day"}, "schedule"),
    ],
)
def test_the_schema_and_the_model_reject_the_same_bad_specs(
    kind: str, spec: dict[str, Any], field: str
) -> None:
    """Schema-level cases (a JSON Schema validator cannot run the CEL rules; the API server enforces
    those, and every one has a case in tests/cluster/test_cluster_crds.py)."""
    doc = {"apiVersion": "llmsim.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    with pytest.raises(jsonschema.ValidationError):
        validate_cr(doc)
    model = SimulationProfileSpec if kind == "SimulationProfile" else LoadScenarioResourceSpec
    with pytest.raises(ValidationError, match=field):
        model.model_validate(spec)


def test_there_is_one_example_per_kind() -> None:
    assert [p.name for p in EXAMPLES] == [
        "llmsim.io_v1alpha1_loadscenario.yaml",
        "llmsim.io_v1alpha1_simulationprofile.yaml",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_the_generated_schema_and_the_models(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    validate_cr(doc)
    model = SimulationProfileSpec if doc["kind"] == "SimulationProfile" else LoadScenarioResourceSpec
    model.model_validate(doc["spec"])
    assert pruned_fields(doc["spec"], openapi(doc["kind"])["properties"]["spec"], "spec") == []
    broken = copy.deepcopy(doc)
    broken["spec"]["target" if doc["kind"] == "LoadScenario" else "latency"]["typo"] = 1
    assert pruned_fields(broken["spec"], openapi(doc["kind"])["properties"]["spec"], "spec") != []


def pruned_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields the API server would drop (or reject under strict field validation)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        for key, sub in value.items():
            if props is not None and key in props:
                out += pruned_fields(sub, props[key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += pruned_fields(sub, schema["additionalProperties"], f"{path}.{key}")
            else:
                out.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            out += pruned_fields(sub, schema["items"], f"{path}[{i}]")
    return out


@pytest.mark.parametrize("kind", crdgen.KINDS, ids=lambda k: k.kind)
def test_editor_json_schemas_accept_the_examples_specs(kind: crdgen.Kind) -> None:
    schema = json.loads((ROOT / "schemas" / kind.schema_file).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    [example] = [p for p in EXAMPLES if p.name.endswith(f"_{kind.singular}.yaml")]
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(example.read_text())["spec"])
