"""The peering check: without its peering object an operator under peering reconciles nothing, so
it says what is missing and how to fix it."""

from __future__ import annotations

import pytest

from llmsim_operator import k8s, peering
from llmsim_operator.settings import OperatorSettings


def fake_cluster(
    monkeypatch: pytest.MonkeyPatch, crds: set[str], objects: set[tuple[str, str | None]]
) -> None:
    monkeypatch.setattr(k8s, "crd_exists", lambda name: name in crds)
    monkeypatch.setattr(
        k8s, "custom_object_exists", lambda group, version, plural, name, ns: (name, ns) in objects
    )


def test_nothing_is_missing_standalone(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cluster(monkeypatch, set(), set())
    assert peering.missing(OperatorSettings(standalone=True)) == []


def test_a_missing_crd_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cluster(monkeypatch, set(), set())
    assert peering.missing(OperatorSettings()) == [
        "the CustomResourceDefinition clusterkopfpeerings.kopf.dev"
    ]


def test_a_missing_cluster_peering_object_is_named_with_the_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cluster(monkeypatch, {"clusterkopfpeerings.kopf.dev"}, set())
    settings = OperatorSettings(peering="llmsim-prod")
    absent = peering.missing(settings)
    assert absent == ["ClusterKopfPeering 'llmsim-prod'"]
    advice = peering.advice(settings, absent)
    assert "ClusterKopfPeering 'llmsim-prod' does not exist" in advice and "reconciles nothing" in advice
    assert "operator.peering.create=true" in advice
    assert "--standalone" in advice and "LLMSIM_OPERATOR_STANDALONE=true" in advice


def test_namespaced_operators_need_a_peering_object_in_each_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_cluster(monkeypatch, {"kopfpeerings.kopf.dev"}, {("llmsim", "team-a")})
    settings = OperatorSettings(watch_namespaces=["team-a", "team-b"])
    assert peering.missing(settings) == ["KopfPeering 'llmsim' in namespace team-b"]
    assert "kubectl apply -n NAMESPACE" in peering.advice(settings, ["x"])


def test_all_there_means_nothing_to_say(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cluster(monkeypatch, {"clusterkopfpeerings.kopf.dev"}, {("llmsim", None)})
    assert peering.missing(OperatorSettings()) == []
