"""The chart's observability kit: the PrometheusRule (the rules files verbatim plus the SLO rules
rendered from values) and the dashboards ConfigMap, both off by default."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import helmrender
import pytest
import yaml

import testbins

FILES = helmrender.CHART / "files"
RULES = yaml.safe_load((FILES / "prometheus" / "llmsim-rules.yaml").read_text(encoding="utf-8"))["groups"]
SLO_RULES = yaml.safe_load((FILES / "prometheus" / "llmsim-slo-rules.yaml").read_text(encoding="utf-8"))[
    "groups"
]
CUSTOM_SLO = {
    "prometheusRule": {
        "enabled": True,
        "namespace": "monitoring",
        "slo": {
            "selector": "",
            "ttft": {"enabled": True, "thresholdSeconds": 0.5, "objective": 0.999},
            "errors": {"enabled": False, "objective": 0.99},
        },
    },
    "grafanaDashboards": {
        "enabled": True,
        "namespace": "grafana",
        "label": "dashboards",
        "labelValue": "llmsim",
    },
}
REFUSED_VALUES = {
    "objective-above-one": {"prometheusRule": {"slo": {"errors": {"objective": 1.5}}}},
    "selector-with-braces": {"prometheusRule": {"slo": {"selector": '{mode="perturb"}'}}},
    "unknown-key": {"grafanaDashboards": {"folder": "llmsim"}},
}


@pytest.fixture(scope="module")
def extra() -> dict[str, Any]:
    jobs = [helmrender.Job(CUSTOM_SLO), *(helmrender.Job(v) for v in REFUSED_VALUES.values())]
    results = helmrender.render_many(jobs).results
    return {"custom": results[0], "refused": dict(zip(REFUSED_VALUES, results[1:], strict=True))}


def test_both_are_off_by_default(rendered: dict[str, helmrender.Rendered]) -> None:
    assert rendered["default"].find("PrometheusRule") == []
    assert [
        c for c in rendered["default"].find("ConfigMap") if c["metadata"]["name"].endswith("-dashboards")
    ] == []
    assert "Observability" not in rendered["default"].notes


def test_the_notes_say_where_rules_and_dashboards_are(rendered: dict[str, helmrender.Rendered]) -> None:
    notes = rendered["observability-values.yaml"].notes
    assert f"PrometheusRule {helmrender.NAMESPACE}/{helmrender.RELEASE}:" in notes
    assert f"ConfigMap {helmrender.NAMESPACE}/{helmrender.RELEASE}-dashboards (grafana_dashboard=1)" in notes


def test_the_prometheus_rule_embeds_the_rules_files(rendered: dict[str, helmrender.Rendered]) -> None:
    rule = rendered["observability-values.yaml"].one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["namespace"] == helmrender.NAMESPACE
    groups = rule["spec"]["groups"]
    assert groups[: len(RULES)] == RULES
    assert groups[len(RULES) :] == SLO_RULES  # the default SLOs render exactly the plain SLO file


def test_the_dashboards_config_map_carries_every_dashboard_for_the_grafana_sidecar(
    rendered: dict[str, helmrender.Rendered],
) -> None:
    config_map = rendered["observability-values.yaml"].one("ConfigMap", f"{helmrender.RELEASE}-dashboards")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"]["grafana_folder"] == "llmsim"
    files = {p.name: p.read_text(encoding="utf-8") for p in (FILES / "dashboards").glob("*.json")}
    assert set(config_map["data"]) == set(files) and len(files) == 3
    for name, text in files.items():
        assert json.loads(config_map["data"][name]) == json.loads(text)


def test_custom_slo_values_change_threshold_objective_selector_and_groups(extra: dict[str, Any]) -> None:
    result = extra["custom"]
    assert not isinstance(result, helmrender.HelmRenderError), result
    rule = result.one("PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    slo = {g["name"]: g for g in rule["spec"]["groups"][len(RULES) :]}
    assert list(slo) == ["llmsim.slo.ttft"]  # the error SLO is disabled
    exprs = [r["expr"] for r in slo["llmsim.slo.ttft"]["rules"]]
    assert 'llmsim_ttft_seconds_bucket{le="0.5"}[5m]' in exprs[0]
    assert "llmsim_ttft_seconds_count{}[5m]" in exprs[0]
    alerts = [r for r in slo["llmsim.slo.ttft"]["rules"] if "alert" in r]
    assert [a["labels"]["severity"] for a in alerts] == ["critical", "warning"]
    assert all("(1 - 0.999)" in a["expr"] for a in alerts)
    dashboards = result.one("ConfigMap", f"{helmrender.RELEASE}-dashboards")
    assert dashboards["metadata"]["namespace"] == "grafana"
    assert dashboards["metadata"]["labels"]["dashboards"] == "llmsim"


def test_a_custom_prometheus_rule_passes_promtool(extra: dict[str, Any], tmp_path: Path) -> None:
    promtool = testbins.require("prometheus") / "promtool"
    rule = extra["custom"].one("PrometheusRule")
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    out = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("case", list(REFUSED_VALUES))
def test_bad_observability_values_are_refused(extra: dict[str, Any], case: str) -> None:
    assert isinstance(extra["refused"][case], helmrender.HelmRenderError)
