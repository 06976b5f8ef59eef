"""What the kind suite applies is valid before any cluster sees it (runs in `make test`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_kind_e2e as e2e
from manifests import VERSIONS, load_documents, project_crds, validation_errors

from llmsim.loadgen import scenario_file

MANIFESTS = sorted((Path(__file__).parent / "manifests").glob("*.yaml"))


@pytest.mark.parametrize("version", VERSIONS)
def test_the_suites_manifests_validate(version: str) -> None:
    crds = project_crds()
    docs = [d for p in MANIFESTS for d in load_documents(p)] + e2e.demo_manifests()
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "LoadScenario",
        "SimulationProfile",
        "Namespace",
    }
    for doc in docs:
        assert validation_errors(doc, version, crds) == [], f"{doc['kind']}/{doc['metadata']['name']}"


def test_the_load_scenario_targets_the_suites_simulator_and_splits_over_workers() -> None:
    docs = {d["kind"]: d for p in MANIFESTS for d in load_documents(p)}
    spec = scenario_file.parse(docs["LoadScenario"])
    service = docs["Service"]["metadata"]["name"]
    assert spec.target.url == f"http://{service}.{e2e.DEMO}.svc:{docs['Service']['spec']['ports'][0]['port']}"
    assert docs["LoadScenario"]["spec"]["parallelism"] == 2
    assert spec.duration_s * 5 >= 30  # enough requests for the summary assertions


def test_the_demo_app_runs_the_image_the_suite_builds() -> None:
    (deployment,) = [d for d in e2e.demo_manifests() if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"llmsim/demo-app:{e2e.TAG}"
    assert set(e2e.IMAGES) == {"sidecar", "operator", "demo-app"}
    for dockerfile, context in e2e.IMAGES.values():
        assert (e2e.REPO / dockerfile).is_file() and context.is_dir()


def test_the_chart_values_of_the_suite_use_the_loaded_images() -> None:
    values = e2e.chart_values()
    assert {values["image"][k]["tag"] for k in ("operator", "sidecar")} == {e2e.TAG}
