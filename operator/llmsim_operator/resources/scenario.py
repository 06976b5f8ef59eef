"""A LoadScenario run: the ConfigMap with the `llmsim load` spec, the indexed Job of workers, and
the ConfigMap with the merged report."""

from __future__ import annotations

import gzip
import json
from typing import Any

import yaml

from llmsim import redact
from llmsim.api.resources import API_KEY_ENV, LoadScenarioResourceSpec
from llmsim_operator import constants as c
from llmsim_operator.resources import names
from llmsim_operator.settings import OperatorSettings

SPEC_DIR = "/etc/llmsim/scenario"
SPEC_FILE = "scenario.yaml"
OUT_DIR = "/tmp/llmsim-out"
WORKER_CONTAINER = "loadgen"
MAX_PLAIN_REPORT = 900_000
"""report.json larger than this is stored gzip-compressed in `binaryData` (ConfigMaps hold 1 MiB)."""


def labels(scenario: str, run_name: str) -> dict[str, str]:
    return {c.SCENARIO_LABEL: scenario, c.RUN_LABEL: run_name, c.MANAGED_BY_LABEL: c.MANAGED_BY}


def spec_config_map(
    scenario: str, namespace: str, run_name: str, spec: LoadScenarioResourceSpec
) -> dict[str, Any]:
    """The scenario file the workers read (the operator-only fields removed)."""
    doc = spec.load_spec().model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.scenario_config_map(run_name),
            "namespace": namespace,
            "labels": labels(scenario, run_name),
        },
        "data": {SPEC_FILE: yaml.safe_dump(doc, sort_keys=False)},
    }


def worker_args(parallelism: int) -> list[str]:
    """`llmsim load` arguments of a worker; Kubernetes expands `$(JOB_COMPLETION_INDEX)`."""
    return [
        "load",
        "--scenario",
        f"{SPEC_DIR}/{SPEC_FILE}",
        "--parallelism",
        str(parallelism),
        "--worker-index",
        "$(JOB_COMPLETION_INDEX)",
        "--out",
        OUT_DIR,
        "--no-html",
        "--quiet",
    ]


def job(
    scenario: str, namespace: str, run_name: str, spec: LoadScenarioResourceSpec, settings: OperatorSettings
) -> dict[str, Any]:
    """An indexed Job of `parallelism` workers. Each runs `llmsim load` through
    `llmsim_operator.worker`, which prints the worker's result to its log for the operator to merge."""
    n = spec.parallelism
    deadline = int(spec.duration_s + spec.request_timeout_s + 300)
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]
    if spec.api_key_secret is not None:  # by reference: the key is never in the Job or the ConfigMap
        ref = {"name": spec.api_key_secret.name, "key": spec.api_key_secret.key}
        env.append({"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": ref}})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": run_name, "namespace": namespace, "labels": labels(scenario, run_name)},
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            "backoffLimitPerIndex": settings.job_backoff_limit,
            "maxFailedIndexes": n,
            "activeDeadlineSeconds": deadline * (1 + settings.job_backoff_limit),
            "template": {
                "metadata": {"labels": labels(scenario, run_name)},
                "spec": {
                    "restartPolicy": "Never",
                    # the workers talk to the target, never to the API server: no token to steal
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": c.SIDECAR_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": WORKER_CONTAINER,
                            "image": settings.loadgen_image,
                            "imagePullPolicy": settings.sidecar_image_pull_policy,
                            "command": ["python", "-m", "llmsim_operator.worker"],
                            "args": worker_args(n),
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "256Mi"},
                                "limits": {"cpu": "2", "memory": "1Gi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "env": env,
                            "volumeMounts": [
                                {"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "spec", "configMap": {"name": names.scenario_config_map(run_name)}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
        },
    }


def report_config_map(scenario: str, namespace: str, run_name: str, report: dict[str, Any]) -> dict[str, Any]:
    """The merged report.json of one run (gzip in `binaryData` when too large for `data`), redacted
    (a parallelism-1 report comes from a worker's log as it is)."""
    text = json.dumps(redact.redact_document(report), indent=1, sort_keys=False)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.report_config_map(run_name),
            "namespace": namespace,
            "labels": labels(scenario, run_name),
        },
    }
    if len(text.encode()) <= MAX_PLAIN_REPORT:
        body["data"] = {"report.json": text}
    else:
        import base64

        body["binaryData"] = {"report.json.gz": base64.b64encode(gzip.compress(text.encode())).decode()}
    return body
