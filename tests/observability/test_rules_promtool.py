"""The rules files pass `promtool check rules`, and `promtool test rules` proves each alert fires when
it should and stays silent when it should not (series fixtures in promtool/*.yaml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from promenv import RULE_FILES, recorded_names, require_binaries

FIXTURES = sorted((Path(__file__).parent / "promtool").glob("*.yaml"))


def test_the_rule_files_pass_promtool_check() -> None:
    promtool = require_binaries() / "promtool"
    out = subprocess.run(
        [str(promtool), "check", "rules", "--lint=all", "--lint-fatal", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for path in RULE_FILES:
        assert f"Checking {path}" in out.stdout and "SUCCESS" in out.stdout


@pytest.mark.parametrize("fixture", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_promtool_unit_tests_pass(fixture: Path) -> None:
    promtool = require_binaries() / "promtool"
    out = subprocess.run(
        [str(promtool), "test", "rules", str(fixture)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=fixture.parent,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_unit_test_that_expects_it_to_fire_and_one_that_expects_silence() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fires: set[str] = set()
    silent: set[str] = set()
    for fixture in FIXTURES:
        for test in yaml.safe_load(fixture.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case["exp_alerts"] else silent).add(case["alertname"])
    assert alerts - fires == set()
    assert alerts - silent == set()


def test_recorded_names_follow_the_level_metric_operation_convention() -> None:
    for name in recorded_names():
        level, metric, operation = name.split(":")
        assert level and metric.startswith("llmsim_") and operation, name
