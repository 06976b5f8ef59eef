"""kopf in-process against kmock's KubernetesEmulator (recipe: shared/notes/kopf-kmock/NOTES.md).

One event loop runs the emulator, the operator and the test; the operator's code has no test hooks:
it is pointed at the emulator through a temporary kubeconfig and LLMSIM_OPERATOR_* variables.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kopf
import pytest

import llmsim_operator.handlers.all  # noqa: F401  # registers the handlers

NS = "team-a"
PROFILES = "llmsim.io/v1alpha1/simulationprofiles"
SCENARIOS = "llmsim.io/v1alpha1/loadscenarios"
CONFIGMAPS = "v1/configmaps"
SECRETS = "v1/secrets"
JOBS = "batch/v1/jobs"
PODS = "v1/pods"
EVENTS = "v1/events"
MERGE = {"Content-Type": "application/merge-patch+json"}


def url(resource: str, namespace: str = NS, name: str | None = None) -> str:
    group_version, plural = resource.rsplit("/", 1)
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


@pytest.fixture()
def cluster(kmock: Any) -> Any:
    with warnings.catch_warnings():  # kmock 0.8 uses importlib.resources.read_binary
        warnings.filterwarnings("ignore", "read_binary is deprecated", DeprecationWarning)
        kmock.resources.load_bundled()
    verbs = {"list", "watch", "get", "patch", "create", "delete"}
    kmock.resources[PROFILES] = kmock.ResourceInfo(
        kind="SimulationProfile",
        singular="simulationprofile",
        namespaced=True,
        verbs=verbs,
        subresources={"status"},
    )
    kmock.resources[SCENARIOS] = kmock.ResourceInfo(
        kind="LoadScenario", singular="loadscenario", namespaced=True, verbs=verbs, subresources={"status"}
    )
    return kmock


@pytest.fixture()
def webhook_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture()
def operator_env(cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook_port: int) -> None:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": str(cluster.url)}}],
                "users": [{"name": "kmock", "user": {"token": "fake-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for key, value in {
        "NAMESPACE": "llmsim-system",
        "WEBHOOK_ADDR": "127.0.0.1",
        "WEBHOOK_PORT": str(webhook_port),
        "WEBHOOK_INSECURE": "true",
        "METRICS_PORT": "0",
        "STANDALONE": "true",
        "PODS_RESYNC_INTERVAL_S": "0.1",
        "SCENARIO_POLL_INTERVAL_S": "0.1",
        "SIDECAR_IMAGE": "llmsim/sidecar:test",
        "WEBHOOK_CERT_DIR": str(tmp_path / "webhook"),
    }.items():
        monkeypatch.setenv(f"LLMSIM_OPERATOR_{key}", value)


class NotOperatorTasks(set[asyncio.Task[Any]]):
    """Tasks kopf's run_tasks() must neither wait for nor cancel (see NOTES.md §2)."""

    def __contains__(self, task: object) -> bool:
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        qualname = getattr(coro, "__qualname__", "")
        return super().__contains__(task) or qualname.startswith("RequestHandler.")


@pytest.fixture()
async def operator(cluster: Any, operator_env: None) -> AsyncIterator[asyncio.Task[Any]]:
    stop = asyncio.Event()
    ignored = NotOperatorTasks(asyncio.all_tasks())
    tasks = await kopf.spawn_tasks(clusterwide=True, standalone=True, stop_flag=stop)
    task = asyncio.create_task(kopf.run_tasks(tasks, ignored=ignored))

    def watching(resource: str) -> bool:
        return any(r.action == cluster.action.WATCH and r.resource == resource for r in cluster)

    await wait_for(lambda: task.done() or all(watching(r) for r in (PROFILES, SCENARIOS, JOBS, PODS)))
    if task.done():
        task.result()
    yield task
    ignored.add(asyncio.current_task())  # type: ignore[arg-type]
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def wait_for(predicate: Callable[[], Any], within: float = 5.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if predicate():
                return
        except (KeyError, ValueError, IndexError, TypeError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def new_object(kind: str, api_version: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": str(uuid.uuid4()),
            "resourceVersion": "1",
            "generation": 1,
            "creationTimestamp": "2026-11-26T12:00:00Z",
            **meta,
        },
        "spec": spec,
    }


async def create(cluster: Any, resource: str, body: dict[str, Any]) -> str:
    rsp = await cluster.post(url(resource, body["metadata"]["namespace"]), json=body)
    assert rsp.status == 200, await rsp.text()
    name: str = body["metadata"]["name"]
    return name


def events_for(cluster: Any, name: str) -> list[dict[str, Any]]:
    return [
        e.data
        for e in cluster
        if e.action == cluster.action.CREATE
        and e.resource == EVENTS
        and e.data["involvedObject"]["name"] == name
    ]
