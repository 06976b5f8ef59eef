"""Render the llmsim chart with Helm's own Go library (helm-sdkpy) into kmock's KubernetesEmulator.

helm-sdkpy has no `template` verb, so the chart is really *installed*: Helm loads it, validates the
values against values.schema.json, renders the templates, installs crds/ and creates every object
through the Kubernetes API of an in-process emulator. What the emulator holds afterwards is exactly
what Helm would create on a cluster; the release's test hooks come back in the install result.

Two things make the emulator usable by Helm's Go client (found by probing it):

* `HELM_DRIVER=memory`: Helm's default release storage writes Secrets in protobuf, which the
  emulator cannot decode; the in-memory driver needs no storage objects. The Go runtime of the
  shared library reads the environment the *process* started with (not later `os.environ`
  changes), so rendering runs in a child process started with that variable: `render_many`.
* `GET /api/v1` is answered with `groupVersion: v1`; kmock 0.8 answers `/v1`, and client-go's REST
  mapper then finds no core kinds ("no matches for kind ConfigMap in version v1").

`GET /version` reports the Kubernetes version asked for (kmock says 1.26), so the chart's
`kubeVersion` constraint is checked by Helm as on a real cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from manifests import NEWEST_KUBERNETES

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "llmsim"
RELEASE = "llmsim"
NAMESPACE = "llmsim-system"
RENDER_TIMEOUT_S = 90

# Custom resources the chart may create besides the built-in kinds (kmock must serve them in discovery).
EXTRA_RESOURCES: dict[str, tuple[str, bool]] = {
    "kopf.dev/v1/clusterkopfpeerings": ("ClusterKopfPeering", False),
    "kopf.dev/v1/kopfpeerings": ("KopfPeering", True),
    "llmsim.io/v1alpha1/simulationprofiles": ("SimulationProfile", True),
    "llmsim.io/v1alpha1/loadscenarios": ("LoadScenario", True),
    "monitoring.coreos.com/v1/servicemonitors": ("ServiceMonitor", True),
    "monitoring.coreos.com/v1/podmonitors": ("PodMonitor", True),
    "monitoring.coreos.com/v1/prometheusrules": ("PrometheusRule", True),
    "cert-manager.io/v1/issuers": ("Issuer", True),
    "cert-manager.io/v1/certificates": ("Certificate", True),
}


class HelmRenderError(RuntimeError):
    """Helm refused the chart or the values (the message is Helm's)."""


@dataclass(frozen=True)
class Rendered:
    """What one install left behind."""

    objects: list[dict[str, Any]]
    """Every object created in the emulator (CRDs included), as plain dicts."""
    hooks: list[dict[str, Any]]
    """The release's hook manifests (the `helm test` resources), parsed."""
    notes: str
    """The rendered NOTES.txt."""

    def find(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        return [
            o for o in self.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
        ]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = self.find(kind, name)
        if len(found) != 1:
            raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)}")
        return found[0]

    @property
    def all_manifests(self) -> list[dict[str, Any]]:
        return self.objects + self.hooks


def values_file(name: str) -> dict[str, Any]:
    """A values file of the chart's ci/ folder."""
    data = yaml.safe_load((CHART / "ci" / name).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"ci/{name}: not a mapping")
    return data


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: dict(o) if isinstance(o, Mapping) else list(o)))


async def _install(values: Mapping[str, Any], namespace: str, workdir: Path, kube_version: str) -> Rendered:
    import helm_sdkpy
    import kmock
    from kmock._internal import apps

    async with kmock.KubernetesEmulator() as emulator, apps.Server(emulator):
        emulator.resources.load_bundled()
        for key, (kind, namespaced) in EXTRA_RESOURCES.items():
            emulator.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs={"get", "list", "watch", "create", "patch", "delete"}
            )

        async def core_group(request: Any) -> Any:
            payload = await emulator._serve_version(request)
            payload["groupVersion"] = "v1"
            return payload

        async def version(request: Any) -> Any:
            major, minor = kube_version.split(".")
            return {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{kube_version}.0",
                "platform": "linux/amd64",
            }

        emulator["get /api/v1"] << core_group
        emulator["get /version"] << version

        kubeconfig = workdir / "kubeconfig.yaml"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "kmock",
                    "clusters": [{"name": "kmock", "cluster": {"server": str(emulator.url)}}],
                    "users": [{"name": "kmock", "user": {"token": "test-token"}}],
                    "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
                }
            ),
            encoding="utf-8",
        )
        config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=str(kubeconfig))
        try:
            release = await helm_sdkpy.Install(config).run(
                RELEASE, str(CHART), values=dict(values), wait=False, timeout=60
            )
        except helm_sdkpy.HelmError as exc:
            raise HelmRenderError(str(exc)) from None
        objects = [_plain(obj) for obj in emulator.objects.values()]
    hooks = [yaml.safe_load(h["manifest"]) for h in release.get("hooks") or []]
    notes = (release.get("info") or {}).get("notes", "")
    return Rendered(objects=objects, hooks=hooks, notes=notes)


async def _lint() -> dict[str, Any]:
    import helm_sdkpy

    result: dict[str, Any] = await helm_sdkpy.Lint(helm_sdkpy.Configuration(namespace=NAMESPACE)).run(
        str(CHART)
    )
    return result


@dataclass(frozen=True)
class Job:
    """One install: the values, the release namespace and the Kubernetes version the emulator reports."""

    values: Mapping[str, Any]
    namespace: str = NAMESPACE
    kube_version: str = NEWEST_KUBERNETES


async def _run_jobs(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for job in jobs:
        with tempfile.TemporaryDirectory(prefix="llmsim-helm-") as tmp:
            try:
                rendered = await _install(job["values"], job["namespace"], Path(tmp), job["kube_version"])
            except HelmRenderError as exc:
                results.append({"error": str(exc)})
                continue
        results.append({"objects": rendered.objects, "hooks": rendered.hooks, "notes": rendered.notes})
    return {"lint": await _lint(), "results": results}


@dataclass(frozen=True)
class Batch:
    """The outcome of `render_many`: `helm lint` of the chart and one entry per job."""

    lint: dict[str, Any]
    results: list[Rendered | HelmRenderError]


def render_many(jobs: list[Job]) -> Batch:
    """Lint the chart and install it once per job, in one child process (see the module docstring)."""
    env = dict(os.environ, HELM_DRIVER="memory")
    home = Path(tempfile.gettempdir()) / "llmsim-tests-helm"
    for var, sub in (
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ):
        env.setdefault(var, str(home / sub))
    env.pop("KUBECONFIG", None)
    payload = json.dumps(
        [{"values": dict(j.values), "namespace": j.namespace, "kube_version": j.kube_version} for j in jobs]
    )
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=RENDER_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the helm renderer crashed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout)
    results: list[Rendered | HelmRenderError] = [
        HelmRenderError(r["error"]) if "error" in r else Rendered(r["objects"], r["hooks"], r["notes"])
        for r in out["results"]
    ]
    return Batch(lint=out["lint"], results=results)


def render(values: Mapping[str, Any] | None = None, **kwargs: Any) -> Rendered:
    """One install (raises HelmRenderError when Helm refuses)."""
    result = render_many([Job(values or {}, **kwargs)]).results[0]
    if isinstance(result, HelmRenderError):
        raise result
    return result


if __name__ == "__main__":
    if os.environ.get("HELM_DRIVER") != "memory":
        sys.exit("helmrender: run through render_many(), which sets HELM_DRIVER=memory")
    print(json.dumps(asyncio.run(_run_jobs(json.load(sys.stdin)))))
