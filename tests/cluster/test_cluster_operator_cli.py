"""`llmsim operator` as the README runs it: a process with only a kubeconfig, every setting at its
default (the chart's names for release `llmsim` are the defaults). This is the check that caught
the freeze: kopf's peering made mandatory by the peering name, combined with `--standalone`, paused
every watch forever and said so only at DEBUG level.

Only the listening addresses differ from the defaults (127.0.0.1 and free ports instead of
0.0.0.0:9443 and :8080, and a private certificate directory): this machine is shared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_objects import profile, ready
from kubeapi import PROFILES, Kube
from managedproc import ManagedProcess, free_port
from operator_proc import LLMSIM

from conftest import Cluster, Operators

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "examples" / "crs" / "llmsim.io_v1alpha1_simulationprofile.yaml"
)


def bare_operator(cluster: Cluster, name: str, *args: str, **env: str) -> ManagedProcess:
    workdir = cluster.workdir / name
    listen = {
        "LLMSIM_OPERATOR_WEBHOOK_ADDR": "127.0.0.1",
        "LLMSIM_OPERATOR_WEBHOOK_PORT": str(free_port()),
        "LLMSIM_OPERATOR_METRICS_PORT": str(free_port()),
        "LLMSIM_OPERATOR_WEBHOOK_CERT_DIR": str(workdir / "certs"),
    }
    return ManagedProcess(
        name,
        [str(LLMSIM), "operator", *args],
        workdir / "operator.log",
        env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "KUBECONFIG": str(cluster.plane.admin.kubeconfig),
             "PYTHONUNBUFFERED": "1", **listen, **env},
    )  # fmt: skip


@pytest.fixture()
def alone(operators: Operators) -> Operators:
    """No other operator runs (a second active one would reconcile the same objects)."""
    operators.stop_shared()
    return operators


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param((), {}, id="peering-as-installed"),
        pytest.param(("--standalone",), {}, id="--standalone"),
        pytest.param((), {"LLMSIM_OPERATOR_STANDALONE": "true"}, id="LLMSIM_OPERATOR_STANDALONE"),
    ],
)
def test_the_operator_with_only_a_kubeconfig_reconciles_a_profile(
    cluster: Cluster, kube: Kube, alone: Operators, namespace: str, args: tuple[str, ...], env: dict[str, str]
) -> None:
    process = bare_operator(cluster, f"bare-{namespace}", *args, **env).start()
    try:
        example = yaml.safe_load(EXAMPLE.read_text())  # the profile the README applies
        example["metadata"]["namespace"] = namespace
        kube.create(PROFILES, namespace, example)
        ready(kube, namespace, example["metadata"]["name"])
        assert "WARNING" not in process.log_path.read_text()
    finally:
        assert process.stop() == 0, process.log_tail()


def test_without_its_peering_object_the_operator_warns_and_says_how_to_fix_it(
    cluster: Cluster, kube: Kube, alone: Operators, namespace: str
) -> None:
    process = bare_operator(
        cluster, f"lonely-{namespace}", LLMSIM_OPERATOR_PEERING="nobody-made-this"
    ).start()
    try:
        line = process.wait_ready(
            lambda: next((ln for ln in process.log_path.read_text().splitlines() if " WARNING " in ln), None),
            60,
            "a WARNING about the peering object",
        )
        assert "ClusterKopfPeering 'nobody-made-this' does not exist" in line
        assert "reconciles nothing" in line
        assert "--standalone" in line and "LLMSIM_OPERATOR_STANDALONE=true" in line
        assert "operator.peering.create=true" in line
        # ...and indeed it reconciles nothing (kopf waits for its peers), while it keeps running.
        kube.create(PROFILES, namespace, profile("waiting"))
        with pytest.raises(TimeoutError):
            ready_within(kube, namespace, "waiting", 5)
        assert process.running()
    finally:
        process.stop()


def ready_within(kube: Kube, namespace: str, name: str, timeout_s: float) -> Any:
    return kube.wait(
        lambda: (kube.get(PROFILES, namespace, name).get("status") or {}).get("phase") == "Ready",
        f"{name} Ready",
        timeout_s,
    )
