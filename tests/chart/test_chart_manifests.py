"""The cached validator agrees with kubernetes-validate itself, valid and invalid, old and new."""

from __future__ import annotations

from typing import Any

import pytest
from manifests import VERSIONS, builtin_errors, reference_errors

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "initContainers": [{"name": "sidecar", "image": "s", "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": "a"}],
    },
}
CASES = {
    "valid pod": POD,
    "unknown field": {**POD, "spec": {**POD["spec"], "containerz": []}},
    "wrong type": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": "two"},
    },
    "unknown kind": {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("version", [*VERSIONS, "1.27"])
def test_cached_validation_agrees_with_kubernetes_validate(case: str, version: str) -> None:
    ours, theirs = builtin_errors(CASES[case], version), reference_errors(CASES[case], version)
    if theirs is None or theirs == []:
        assert ours == theirs
    else:
        assert ours and theirs[0] in ours


def test_native_sidecars_need_kubernetes_1_29_schemas() -> None:
    assert builtin_errors(POD, "1.29") == []
    assert builtin_errors(POD, "1.27") and "restartPolicy" in builtin_errors(POD, "1.27")[0]  # type: ignore[index]
