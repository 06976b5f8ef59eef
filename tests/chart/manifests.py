"""Validation of Kubernetes manifests: built-in kinds with kubernetes-validate (strict: unknown fields
are errors), custom resources against the openAPIV3Schema of their CRD."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import referencing
import yaml
from kubernetes_validate import utils as kv

REPO = Path(__file__).resolve().parents[2]

OLDEST_KUBERNETES = "1.29"
"""Oldest supported Kubernetes: native sidecars (init containers with restartPolicy: Always) and
Indexed Jobs with backoffLimitPerIndex are on by default from 1.29."""
NEWEST_KUBERNETES = "1.37"
"""Newest supported Kubernetes (the newest schemas kubernetes-validate ships)."""
VERSIONS = (OLDEST_KUBERNETES, NEWEST_KUBERNETES)

NO_SCHEMA_KINDS = frozenset(
    {
        "monitoring.coreos.com/v1/ServiceMonitor",
        "monitoring.coreos.com/v1/PodMonitor",
        "monitoring.coreos.com/v1/PrometheusRule",
        "cert-manager.io/v1/Certificate",
        "cert-manager.io/v1/Issuer",
    }
)
"""Third-party kinds whose CRDs are not available offline; the chart tests check them structurally."""


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file (which must be mappings)."""
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: document {i} is a {type(doc).__name__}, not a mapping")
    return docs


def kind_key(obj: Mapping[str, Any]) -> str:
    return f"{obj['apiVersion']}/{obj['kind']}"


def _structural_to_jsonschema(node: Any) -> Any:
    """An apiextensions structural schema as JSON Schema: `nullable`, int-or-string, boolean exclusive
    bounds, and unknown fields rejected where the API server would prune them (as `kubectl apply`'s
    strict field validation does). CEL rules (x-kubernetes-validations) are not evaluated here; the
    pydantic models enforce the same constraints."""
    if isinstance(node, list):
        return [_structural_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for bound, exclusive in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        if isinstance(out.get(exclusive), bool):  # OpenAPI 3.0 -> JSON Schema draft 7
            is_exclusive = out.pop(exclusive)
            if is_exclusive and bound in out:
                out[exclusive] = out.pop(bound)
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    prunes = node.get("type") == "object" and "properties" in node and "additionalProperties" not in node
    if prunes and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


class CrdSchemas:
    """openAPIV3Schemas of CRDs, by `group/version/Kind`."""

    def __init__(self, crds: Iterable[Mapping[str, Any]]) -> None:
        self._schemas: dict[str, dict[str, Any]] = {}
        for crd in crds:
            spec = crd["spec"]
            for version in spec["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                props["metadata"] = {"type": "object"}
                key = f"{spec['group']}/{version['name']}/{spec['names']['kind']}"
                self._schemas[key] = _structural_to_jsonschema(schema)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> CrdSchemas:
        return cls(d for p in paths for d in load_documents(p) if d.get("kind") == "CustomResourceDefinition")

    def __contains__(self, key: str) -> bool:
        return key in self._schemas

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        validator = jsonschema.Draft7Validator(self._schemas[kind_key(obj)])
        return [
            f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(obj)
        ]


def project_crds() -> CrdSchemas:
    """llmsim's generated CRDs and kopf's peering CRDs (as shipped in the chart)."""
    chart_crds = REPO / "charts" / "llmsim" / "crds"
    return CrdSchemas.from_files([*sorted((REPO / "crds").glob("*.yaml")), chart_crds / "kopf-peering.yaml"])


@functools.cache
def _builtin_validator(version: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator | None:
    """kubernetes-validate's strict schema for a kind, loaded once (the library re-reads its large
    definitions file on every call). Same file and version selection as `kubernetes_validate.validate`."""
    schema_version = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(version)][-1]
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{schema_version}-local-strict"
    try:
        schema = kv.schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        return None
    definitions = kv.schema_contents(f"{folder}/_definitions.json", version)
    registry = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def builtin_errors(obj: Mapping[str, Any], version: str) -> list[str] | None:
    """Errors of a built-in kind (None: kubernetes-validate has no schema for it)."""
    validator = _builtin_validator(version, obj["kind"], obj["apiVersion"])
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(dict(obj)), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def validation_errors(obj: Mapping[str, Any], version: str, crds: CrdSchemas) -> list[str] | None:
    """Problems of one manifest for Kubernetes `version` ([] when valid); None when no schema is known
    (only for NO_SCHEMA_KINDS; any other unknown kind is an error)."""
    key = kind_key(obj)
    if key in crds:
        return crds.errors(obj)
    errors = builtin_errors(obj, version)
    if errors is None:
        return None if key in NO_SCHEMA_KINDS else [f"no schema for {key} in Kubernetes {version}"]
    return errors


def reference_errors(obj: Mapping[str, Any], version: str) -> list[str] | None:
    """The same check through `kubernetes_validate.validate` itself (first error only), to pin
    `builtin_errors` to the library's behaviour."""
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(str(p) for p in exc.path) or '<root>'}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return None
    return []
