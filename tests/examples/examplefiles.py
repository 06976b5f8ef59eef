"""Every YAML file under examples/, classified: Kubernetes objects, bare specs, kustomize patches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manifests import load_documents

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

THIRD_PARTY_GROUPS = (
    "argoproj.io/",
    "source.toolkit.fluxcd.io/",
    "helm.toolkit.fluxcd.io/",
    "kustomize.toolkit.fluxcd.io/",
)
"""GitOps controllers' kinds: no schemas offline, checked structurally in test_examples_gitops.py."""


@dataclass(frozen=True)
class Document:
    path: Path
    index: int
    body: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}#{self.index}"


def yaml_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def kustomize_patch_files() -> set[Path]:
    """Files used as `patches[].path` by a kustomization: partial objects, valid only once merged."""
    out: set[Path] = set()
    for path in EXAMPLES.rglob("kustomization.yaml"):
        (doc,) = load_documents(path)
        out |= {(path.parent / p["path"]).resolve() for p in doc.get("patches") or [] if "path" in p}
    return out


def documents() -> Iterator[Document]:
    patches = kustomize_patch_files()
    for path in yaml_files():
        if path.resolve() in patches:
            continue
        for i, body in enumerate(load_documents(path)):
            yield Document(path, i, body)


def is_kubernetes_object(body: dict[str, Any]) -> bool:
    return "apiVersion" in body and "kind" in body
