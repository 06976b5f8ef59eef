"""The webhook's own view of the SimulationProfiles (every replica lists and watches them itself,
whatever kopf's peering pauses)."""

from __future__ import annotations

from typing import Any

import pytest

from llmsim_operator import k8s
from llmsim_operator.profile_cache import ProfileCache, profile_info


def obj(name: str, namespace: str = "team-a", phase: str | None = "Ready", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
    if phase:
        body["status"] = {"phase": phase}
    return body


def test_profile_info_is_what_the_webhook_decides_with() -> None:
    info = profile_info(
        obj("drill", selector={"matchLabels": {"app": "chat"}}, interceptHosts=["gw.internal:443"])
    )
    assert (info.name, info.namespace, info.config_map) == ("drill", "team-a", "llmsim-profile-drill-cfg")
    assert (
        info.match_labels == {"app": "chat"} and info.intercept_hosts == ("gw.internal:443",) and info.ready
    )
    assert not profile_info(obj("new", phase=None)).ready
    assert profile_info(obj("any")).match_labels is None


async def test_before_its_first_list_a_lookup_asks_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(k8s, "list_custom", lambda plural, ns: asked.append(ns) or [obj("drill", ns)])
    cache = ProfileCache()  # not started: nothing listed yet
    assert cache.profiles("team-a") is None
    (info,) = await cache.lookup("team-a")
    assert info.name == "drill" and asked == ["team-a"]


async def test_watch_events_update_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        k8s, "list_custom", lambda *_: pytest.fail("a synced cache does not ask the API server")
    )
    cache = ProfileCache()
    cache._profiles[None] = {}  # as after an empty first list
    cache._apply(None, "ADDED", obj("drill", phase=None))
    assert [p.ready for p in await cache.lookup("team-a")] == [False]
    cache._apply(None, "MODIFIED", obj("drill"))
    assert [p.ready for p in await cache.lookup("team-a")] == [True]
    assert await cache.lookup("team-b") == []
    cache._apply(None, "DELETED", obj("drill"))
    assert await cache.lookup("team-a") == []


def test_a_namespaced_cache_knows_nothing_outside_its_namespaces() -> None:
    cache = ProfileCache(["team-a"])
    assert cache.profiles("team-a") is None  # not listed yet
    assert cache.profiles("elsewhere") == []  # never watched: no profile is reconciled there either
