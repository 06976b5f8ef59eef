"""The GitOps layout: bases and overlays are complete kustomizations whose output is valid, and the
Argo CD / Flux objects point at paths that exist."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from examplefiles import EXAMPLES, REPO
from manifests import VERSIONS, CrdSchemas, load_documents, project_crds, validation_errors

from llmsim import profiles
from llmsim.loadgen import scenario_file

GITOPS = EXAMPLES / "gitops"
KUSTOMIZATIONS = sorted(p.parent for p in EXAMPLES.rglob("kustomization.yaml"))
OVERLAYS = sorted(p for p in (GITOPS / "overlays").iterdir() if p.is_dir())


def kustomization(folder: Path) -> dict[str, Any]:
    (doc,) = load_documents(folder / "kustomization.yaml")
    return doc


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_kustomization_references_files_that_exist(folder: Path) -> None:
    doc = kustomization(folder)
    assert doc["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and doc["kind"] == "Kustomization"
    referenced = list(doc.get("resources") or [])
    referenced += [p["path"] for p in doc.get("patches") or [] if "path" in p]
    referenced += [f for g in doc.get("configMapGenerator") or [] for f in g.get("files") or []]
    for ref in referenced:
        target = (folder / ref).resolve()
        assert target.exists(), f"{folder.name}: {ref} does not exist"
        assert target.is_relative_to(EXAMPLES), f"{ref} leaves examples/"
        if target.is_dir():
            assert (target / "kustomization.yaml").exists(), f"{ref} is a folder without a kustomization"
    for patch in doc.get("patches") or []:
        assert "path" in patch or ("patch" in patch and "target" in patch)


def test_overlays_build_on_the_base_and_change_the_namespace() -> None:
    assert [p.name for p in OVERLAYS] == ["dev", "staging"]
    for overlay in OVERLAYS:
        doc = kustomization(overlay)
        assert "../../base" in doc["resources"]
        assert doc["namespace"] == f"shop-{overlay.name}"


def kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl (with its built-in kustomize) is not installed; the structural checks above still ran"
        )
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def crds() -> CrdSchemas:
    return project_crds()


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_kustomize_output_is_valid(folder: Path, crds: CrdSchemas) -> None:
    objects = kustomize(folder)
    assert objects
    for obj in objects:
        for version in VERSIONS:
            assert validation_errors(obj, version, crds) == [], f"{obj['kind']}/{obj['metadata']['name']}"
        where = f"{folder.relative_to(REPO)}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "SimulationProfile":
            profiles.parse_spec(obj["spec"], where, "spec")
        elif obj["kind"] == "LoadScenario":
            scenario_file.parse(obj, where)


def test_dev_injects_the_whole_namespace_and_staging_perturbs_within_limits() -> None:
    dev = {o["kind"]: o for o in kustomize(GITOPS / "overlays" / "dev")}
    assert dev["Namespace"]["metadata"]["labels"]["llmsim.io/inject"] == "enabled"
    assert dev["SimulationProfile"]["spec"]["mode"] == "simulate"
    staging = {o["kind"]: o for o in kustomize(GITOPS / "overlays" / "staging")}
    assert "llmsim.io/inject" not in staging["Namespace"]["metadata"].get("labels", {})
    spec = profiles.parse_spec(staging["SimulationProfile"]["spec"], "staging", "spec")
    assert spec.mode.value == "perturb" and spec.percentage == 5 and spec.duration_s == 1800
    assert staging["LoadScenario"]["spec"]["target"]["url"] == "http://assistant.shop-staging.svc"


def gitops_objects() -> dict[str, dict[str, Any]]:
    docs = [
        d
        for p in sorted((GITOPS / "argocd").glob("*.yaml")) + sorted((GITOPS / "flux").glob("*.yaml"))
        for d in load_documents(p)
    ]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_argo_cd_and_flux_sync_the_overlay_after_the_chart() -> None:
    objects = gitops_objects()
    app = objects["Application/shop-llmsim-staging"]["spec"]
    assert (REPO / app["source"]["path"] / "kustomization.yaml").exists()
    chart_app = objects["Application/llmsim"]
    assert int(chart_app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < 0
    assert chart_app["spec"]["source"]["chart"] == "llmsim"
    flux = objects["Kustomization/shop-llmsim-staging"]["spec"]
    assert (REPO / flux["path"] / "kustomization.yaml").exists()
    release = objects["HelmRelease/llmsim"]["spec"]
    assert release["chart"]["spec"]["chart"] == "llmsim"
    assert release["install"]["crds"] == "CreateReplace"


def test_values_given_to_the_chart_by_gitops_are_valid_chart_values() -> None:
    import jsonschema

    schema = yaml.safe_load((REPO / "charts" / "llmsim" / "values.schema.json").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((REPO / "charts" / "llmsim" / "values.yaml").read_text(encoding="utf-8"))
    objects = gitops_objects()
    for values in (
        objects["Application/llmsim"]["spec"]["source"]["helm"]["valuesObject"],
        objects["HelmRelease/llmsim"]["spec"]["values"],
    ):
        merged = {**defaults, "injection": {**defaults["injection"], **values["injection"]}}
        jsonschema.Draft7Validator(schema).validate(merged)
