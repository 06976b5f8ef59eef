"""Every example file is well-formed, and every Kubernetes object in examples/ is valid: built-in kinds
with kubernetes-validate for the oldest and newest supported Kubernetes, llmsim custom resources with
the generated CRD schemas *and* the pydantic models the operator uses, bare specs with the loaders
`llmsim serve` and `llmsim load` use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from examplefiles import (
    EXAMPLES,
    REPO,
    THIRD_PARTY_GROUPS,
    Document,
    documents,
    is_kubernetes_object,
    yaml_files,
)
from manifests import VERSIONS, CrdSchemas, kind_key, load_documents, project_crds, validation_errors

from llmsim import profiles
from llmsim.loadgen import scenario_file

CHART = REPO / "charts" / "llmsim"

DOCS = list(documents())
OBJECTS = [d for d in DOCS if is_kubernetes_object(d.body) and d.path.name != "kustomization.yaml"]
BUILTIN = [
    d
    for d in OBJECTS
    if "llmsim.io/" not in d.body["apiVersion"] and not d.body["apiVersion"].startswith(THIRD_PARTY_GROUPS)
]
LLMSIM = [d for d in OBJECTS if d.body["apiVersion"].startswith("llmsim.io/")]
BARE = [d for d in DOCS if not is_kubernetes_object(d.body)]


@pytest.fixture(scope="module")
def crds() -> CrdSchemas:
    return project_crds()


def test_there_are_examples_of_every_sort() -> None:
    assert len(yaml_files()) >= 25
    assert {d.body["kind"] for d in LLMSIM} == {"SimulationProfile", "LoadScenario"}
    assert {"Deployment", "Service", "Namespace"} <= {d.body["kind"] for d in BUILTIN}
    assert BARE, "examples/scenarios holds bare LoadScenario specs"


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_yaml_file_is_well_formed(path: Path) -> None:
    docs = load_documents(path)
    assert docs, f"{path}: empty"
    assert path.read_text(encoding="utf-8").endswith("\n")


@pytest.mark.parametrize("doc", BUILTIN, ids=lambda d: d.where)
@pytest.mark.parametrize("version", VERSIONS)
def test_builtin_objects_validate(doc: Document, version: str, crds: CrdSchemas) -> None:
    assert validation_errors(doc.body, version, crds) == []


@pytest.mark.parametrize("doc", LLMSIM, ids=lambda d: d.where)
def test_custom_resources_validate_against_the_generated_crds(doc: Document, crds: CrdSchemas) -> None:
    assert kind_key(doc.body) in crds
    assert crds.errors(doc.body) == []


@pytest.mark.parametrize("doc", LLMSIM, ids=lambda d: d.where)
def test_custom_resources_validate_with_the_models(doc: Document) -> None:
    text = doc.path.read_text(encoding="utf-8") if len(load_documents(doc.path)) == 1 else None
    if doc.body["kind"] == "SimulationProfile":
        named = profiles.split_document(doc.body, doc.where, "x")
        spec = profiles.parse_spec(named[1], doc.where, named[2])
        assert spec is not None
        if text is not None:
            assert profiles.load_file(doc.path).name == doc.body["metadata"]["name"]
    else:
        assert scenario_file.parse(doc.body, doc.where) is not None


@pytest.mark.parametrize("doc", BARE, ids=lambda d: d.where)
def test_bare_specs_load(doc: Document) -> None:
    if doc.path.parent.name == "scenarios":
        assert scenario_file.load_file(doc.path).duration_s > 0
    elif doc.path.name == "values.yaml":  # values for the chart (examples/drills): its schema, its profile
        defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
        schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
        jsonschema.validate(_merged(defaults, doc.body), schema)
        profile = (doc.body.get("provider") or {}).get("profile")
        if profile is not None:
            assert profiles.parse_spec(profile, doc.where, "provider") is not None
    else:
        pytest.fail(f"{doc.where}: a bare spec outside examples/scenarios; make it a whole resource")


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merged(base[key], value)
            if isinstance(value, dict) and isinstance(base.get(key), dict)
            else value
        )
    return out


def test_no_example_names_a_namespace_the_webhook_excludes() -> None:
    excluded = {"kube-system", "kube-public", "kube-node-lease"}
    assert not [d.where for d in OBJECTS if d.body.get("metadata", {}).get("namespace") in excluded]


def test_the_repository_keeps_no_stray_example_formats() -> None:
    odd = [
        p for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix not in {".yaml", ".py", ".md", ".txt", ""}
    ]
    assert [str(p.relative_to(REPO)) for p in odd if p.name != "Dockerfile"] == []
