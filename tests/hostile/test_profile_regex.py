"""Profile regexes run in linear time, and those that need backtracking are rejected naming the
field (issue 18, item 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostile.harness import Served, bounded, serve

CATASTROPHIC = {
    "nested quantifiers": ("^(a+)+$", "a" * 40 + "!"),
    "alternation under a star": ("^(a|a)*$", "a" * 40 + "!"),
    "quadratic dot-star": (".*x", "a " * 50_000),
}


@pytest.fixture(scope="module")
def regex_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("regex")
    rules = [{"match": pattern, "reply": name} for name, (pattern, _) in CATASTROPHIC.items()]
    profile = tmp / "regex.yaml"
    profile.write_text(json.dumps({
        "latency": {"ttftMs": {"type": "constant", "value": 5}, "itlMs": {"type": "constant", "value": 1},
                    "outputTokens": {"type": "constant", "value": 8}},
        "content": {"rules": rules},
    }), encoding="utf-8")  # fmt: skip
    with serve(tmp, profile=profile) as running:
        yield running
    assert "Traceback" not in running.log()


@pytest.mark.parametrize("name", list(CATASTROPHIC))
def test_a_catastrophic_profile_regex_runs_in_linear_time(regex_served: Served, name: str) -> None:
    _, prompt = CATASTROPHIC[name]
    body = json.dumps(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}], "max_tokens": 16}
    )
    answer = bounded(regex_served, "POST", "/v1/chat/completions", body.encode())
    assert answer.status == 200


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "llmsim.cli.main", "profile", "validate", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("content.rules[0].match", {"match": "(a+)\\1", "reply": "x"}),
        ("content.rules[0].toolResult.match", {"toolResult": {"match": "(?=a)a"}, "reply": "x"}),
    ],
)
def test_profile_validate_rejects_a_regex_that_needs_backtracking_naming_the_field(
    tmp_path: Path, field: str, rule: dict[str, object]
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"content": {"rules": [rule]}}), encoding="utf-8")
    result = _validate(path)
    assert result.returncode != 0
    assert f"{field}: not a valid regular expression" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
