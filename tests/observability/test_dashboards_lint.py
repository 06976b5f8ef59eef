"""Lint of the Grafana dashboards: a schema version with datasource references, every query through
the `${datasource}` variable (no hard-coded datasource UIDs, no numeric ids that break
provisioning), unique panel ids, sane layout, and every query backed by a recording rule."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from promenv import DASHBOARDS, recorded_names

MIN_SCHEMA_VERSION = 36
"""Grafana's first schema with `{type, uid}` datasource references (and `${datasource}` in them)."""
PANEL_TYPES = {"row", "timeseries", "stat", "state-timeline"}
_RECORDED = re.compile(r"[a-z_]+:llmsim_[a-z0-9_]+:[a-z0-9_]+")


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """(key, value) of every mapping entry, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in doc["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def queries(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and annotation."""
    out = [
        (f"panel {p['title']!r} target {t['refId']}", t["expr"])
        for p in panels(doc)
        for t in p.get("targets", [])
    ]
    out += [(f"annotation {a['name']!r}", a["expr"]) for a in doc["annotations"]["list"]]
    return out


ids = [p.stem for p in DASHBOARDS]


def test_there_are_the_three_dashboards() -> None:
    assert {load(p)["uid"] for p in DASHBOARDS} == {"llmsim-overview", "llmsim-chaos", "llmsim-load"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_schema_version_uid_and_no_numeric_id(path: Path) -> None:
    doc = load(path)
    assert isinstance(doc["schemaVersion"], int) and doc["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert re.fullmatch(r"llmsim-[a-z-]+", doc["uid"]), (
        "a stable, readable dashboard uid (not a generated one)"
    )
    assert doc.get("id") is None, "an exported numeric id breaks provisioning into another Grafana"
    assert doc["title"].startswith("llmsim / ") and "llmsim" in doc["tags"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_every_datasource_is_the_datasource_variable(path: Path) -> None:
    doc = load(path)
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    refs = [value for key, value in walk(doc) if key == "datasource" and isinstance(value, dict)]
    assert refs, "no datasource references at all"
    assert all(ref == {"type": "prometheus", "uid": "${datasource}"} for ref in refs), refs
    assert not [v for k, v in walk(doc) if k == "datasource" and isinstance(v, str)], "legacy name references"
    for panel in panels(doc):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_panels_have_unique_ids_known_types_and_fit_the_grid(path: Path) -> None:
    doc = load(path)
    seen: set[int] = set()
    for panel in panels(doc):
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert panel["id"] not in seen
        seen.add(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        if panel["type"] != "row":
            assert panel["title"] and panel["description"], "every panel says what it shows"
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_every_query_is_backed_by_the_recording_rules(path: Path) -> None:
    doc = load(path)
    recorded = recorded_names()
    for where, expr in queries(doc):
        names = set(_RECORDED.findall(expr))
        assert names, f"{where}: {expr!r} uses no recorded series"
        assert names <= recorded, f"{where}: {sorted(names - recorded)} are not recorded by the rules"
        assert "llmsim_" not in _RECORDED.sub("", expr), f"{where}: reads a raw series; query a recorded one"
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            assert set(_RECORDED.findall(variable["query"]["query"])) <= recorded, variable["name"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=ids)
def test_variables_filter_every_query(path: Path) -> None:
    doc = load(path)
    names = {v["name"] for v in doc["templating"]["list"] if v["type"] == "query"}
    assert "namespace" in names
    for where, expr in queries(doc):
        assert 'namespace=~"$namespace"' in expr, f"{where}: not filtered by namespace"
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["includeAll"] and variable["allValue"] == ".*", variable["name"]
