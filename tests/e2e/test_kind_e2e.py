"""End to end on a kind cluster: build and load the images, install the chart (helm-sdkpy), run
`helm test`, opt a namespace in, deploy the demo app, check the sidecar was injected and that the
app's OpenAI calls are answered by the simulator, run a LoadScenario to Succeeded, change the
profile and see the new latency without a restart, uninstall.

    make e2e                                   # needs Docker and kind
    LLMSIM_E2E_NODE_IMAGE=kindest/node:v1.29.14 make e2e     # the oldest supported Kubernetes
    LLMSIM_E2E_KEEP_CLUSTER=1 make e2e         # keep (and reuse) the cluster for debugging
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kind_env import CLUSTER, NODE_IMAGE, REPO, TAG, kubectl, kubectl_json, run, wait_for

from llmsim_operator import constants

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

RELEASE = "llmsim"
SYSTEM = "llmsim-system"
DEMO = "llmsim-demo"
IMAGES = {
    "sidecar": ("sidecar/Dockerfile", REPO),
    "operator": ("operator/Dockerfile", REPO),
    "demo-app": ("examples/demo-app/Dockerfile", REPO / "examples" / "demo-app"),
}
SLOW_TTFT_MS = 1500


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A kind cluster with the freshly built images loaded; yields its kubeconfig."""
    keep = os.environ.get("LLMSIM_E2E_KEEP_CLUSTER") == "1"
    existing = run(["kind", "get", "clusters"]).split()
    if CLUSTER not in existing:
        args = ["kind", "create", "cluster", "--name", CLUSTER, "--wait", "120s"]
        run(args + (["--image", NODE_IMAGE] if NODE_IMAGE else []), timeout=600)
    for name, (dockerfile, context) in IMAGES.items():
        image = f"llmsim/{name}:{TAG}"
        run(["docker", "build", "-f", str(REPO / dockerfile), "-t", image, str(context)], timeout=1200)
        run(["kind", "load", "docker-image", image, "--name", CLUSTER], timeout=600)
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    kubeconfig.write_text(run(["kind", "get", "kubeconfig", "--name", CLUSTER]), encoding="utf-8")
    yield kubeconfig
    if not keep:
        run(["kind", "delete", "cluster", "--name", CLUSTER], timeout=300, check=False)


def helm(kubeconfig: Path) -> Any:
    import helm_sdkpy

    return helm_sdkpy, helm_sdkpy.Configuration(namespace=SYSTEM, kubeconfig=str(kubeconfig))


def chart_values() -> dict[str, Any]:
    image = {"tag": TAG, "pullPolicy": "IfNotPresent"}
    return {
        "image": {
            "operator": {"repository": "llmsim/operator", **image},
            "sidecar": {"repository": "llmsim/sidecar", **image},
        },
        "operator": {"podsResyncIntervalS": 5, "scenarioPollIntervalS": 3},
    }


@pytest.fixture(scope="module")
def installed(cluster: Path) -> Iterator[Path]:
    sdk, config = helm(cluster)
    asyncio.run(sdk.Install(config).run(RELEASE, str(REPO / "charts" / "llmsim"), values=chart_values(),
                                        create_namespace=True, wait=True, timeout=600))  # fmt: skip
    yield cluster


def test_the_operator_rolls_out_with_two_replicas_and_one_leader(installed: Path) -> None:
    kubectl("-n", SYSTEM, "rollout", "status", f"deploy/{RELEASE}", "--timeout=300s", timeout=320)
    deployment = kubectl_json("-n", SYSTEM, "get", "deploy", RELEASE)
    assert deployment["status"]["readyReplicas"] == 2
    peering = wait_for(
        "both replicas in the ClusterKopfPeering",
        lambda: (
            (p := kubectl_json("get", "clusterkopfpeering", RELEASE)).get("status")
            and len(p["status"]) == 2
            and p
        ),
        timeout=120,
    )
    priorities = [peer["priority"] for peer in peering["status"].values()]
    assert len(set(priorities)) == 2, "equal priorities would pause both replicas"


def test_the_webhook_has_a_ca_bundle_and_helm_test_passes(installed: Path) -> None:
    config = wait_for(
        "the operator to set the caBundle",
        lambda: (
            (c := kubectl_json("get", "mutatingwebhookconfiguration", f"{RELEASE}-sidecar-injector"))
            and all(h["clientConfig"].get("caBundle") for h in c["webhooks"])
            and c
        ),
        timeout=120,
    )
    assert {h["clientConfig"]["service"]["path"] for h in config["webhooks"]} == constants.WEBHOOK_PATHS
    sdk, helm_config = helm(installed)
    result = asyncio.run(sdk.ReleaseTest(helm_config).run(RELEASE))
    assert "Succeeded" in json.dumps(result)


def demo_manifests() -> list[dict[str, Any]]:
    folder = REPO / "examples" / "demo-app"
    docs = [
        d
        for name in ("namespace.yaml", "profile.yaml", "deployment.yaml")
        for d in yaml.safe_load_all((folder / name).read_text(encoding="utf-8"))
        if d
    ]
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = f"llmsim/demo-app:{TAG}"
    return docs


def ask(question: str = "ping") -> dict[str, Any]:
    out = kubectl("-n", DEMO, "exec", "deploy/demo-app", "-c", "app", "--", "python", "-c",
                  "import sys, urllib.request; print(urllib.request.urlopen("
                  f"'http://127.0.0.1:8000/ask?q={question}', timeout=60).read().decode())", timeout=90)  # fmt: skip
    return json.loads(out)


@pytest.fixture(scope="module")
def demo(installed: Path) -> dict[str, Any]:
    kubectl("apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(d) for d in demo_manifests()))
    wait_for("the demo profile to become Ready", lambda: kubectl_json("-n", DEMO, "get", "simulationprofile", "happy-path")
             .get("status", {}).get("phase") == "Ready", timeout=120)  # fmt: skip
    kubectl("-n", DEMO, "rollout", "status", "deploy/demo-app", "--timeout=300s", timeout=320)
    (pod,) = kubectl_json("-n", DEMO, "get", "pods", "-l", "app.kubernetes.io/name=demo-app")["items"]
    return pod


def test_the_namespace_label_injects_the_sidecar(demo: dict[str, Any]) -> None:
    meta, spec = demo["metadata"], demo["spec"]
    assert meta["annotations"][constants.INJECTED_ANNOTATION] == "happy-path"
    assert meta["labels"][constants.INJECTED_LABEL] == "true"
    sidecars = [c for c in spec.get("initContainers", []) if c["name"] == constants.SIDECAR_NAME]
    assert len(sidecars) == 1 and sidecars[0].get("restartPolicy") == "Always"  # a native sidecar
    env = {e["name"]: e.get("value") for e in spec["containers"][0].get("env", [])}
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert "SSL_CERT_FILE" in env and env["OPENAI_API_KEY"] == "sk-simulated-demo-key"


def test_the_apps_openai_calls_are_answered_by_the_simulator(demo: dict[str, Any]) -> None:
    answer = ask("ping")
    assert answer["reply"] == "pong"  # the happy-path profile's scripted rule
    assert answer["systemFingerprint"] == "fp_llmsim"
    assert answer["stream"] is True and answer["ttftMs"] < SLOW_TTFT_MS


def test_a_load_scenario_runs_to_succeeded_with_a_summary(demo: dict[str, Any]) -> None:
    for doc in yaml.safe_load_all(
        (Path(__file__).parent / "manifests" / "load.yaml").read_text(encoding="utf-8")
    ):
        kubectl("-n", DEMO, "apply", "-f", "-", input=yaml.safe_dump(doc))
    kubectl("-n", DEMO, "rollout", "status", "deploy/llmsim-serve", "--timeout=300s", timeout=320)
    status = wait_for(
        "the LoadScenario to finish",
        lambda: (s := kubectl_json("-n", DEMO, "get", "loadscenario", "e2e-steady").get("status", {}))
        .get("phase") in ("Succeeded", "Failed") and s,
        timeout=600, interval=5,
    )  # fmt: skip
    assert status["phase"] == "Succeeded", status
    summary = status["summary"]
    assert summary["requests"] >= 30 and summary["achievedRps"] > 2
    assert summary["ttftMs"]["p95"] is not None and status["slo"] == "Met"
    assert status["workersSucceeded"] == 2


def test_a_profile_change_reaches_the_running_sidecar(demo: dict[str, Any]) -> None:
    before = [ask()["ttftMs"] for _ in range(3)]
    patch = {"spec": {"latency": {"ttftMs": {"type": "constant", "value": SLOW_TTFT_MS, "median": None, "sigma": None,
                                             "max": None}}}}  # fmt: skip
    kubectl(
        "-n", DEMO, "patch", "simulationprofile", "happy-path", "--type", "merge", "-p", json.dumps(patch)
    )
    wait_for(
        "the new TTFT in the sidecar", lambda: ask()["ttftMs"] >= SLOW_TTFT_MS * 0.95, timeout=240, interval=5
    )
    after = [ask()["ttftMs"] for _ in range(3)]
    assert statistics.median(before) < SLOW_TTFT_MS * 0.7 <= SLOW_TTFT_MS * 0.95 <= min(after)
    (pod,) = kubectl_json("-n", DEMO, "get", "pods", "-l", "app.kubernetes.io/name=demo-app")["items"]
    assert pod["metadata"]["uid"] == demo["metadata"]["uid"], "the pod was replaced instead of reloaded"
    assert all(s["restartCount"] == 0 for s in pod["status"]["containerStatuses"])


def test_uninstall_removes_the_operator_and_the_webhook(installed: Path) -> None:
    kubectl("delete", "namespace", DEMO, "--wait=true", timeout=300)
    sdk, config = helm(installed)
    asyncio.run(sdk.Uninstall(config).run(RELEASE, wait=True, timeout=300))
    assert (
        kubectl("get", "mutatingwebhookconfiguration", f"{RELEASE}-sidecar-injector", check=False).strip()
        == ""
    )
    assert kubectl("-n", SYSTEM, "get", "deploy", RELEASE, check=False).strip() == ""
    assert kubectl("get", "clusterrole", RELEASE, check=False).strip() == ""
    # Helm never deletes CRDs (they would take every SimulationProfile with them); they stay by design.
    assert "simulationprofiles.llmsim.io" in kubectl("get", "crd", "-o", "name")
