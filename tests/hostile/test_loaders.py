"""Profile and scenario loaders reject bad files with one line naming the file and the problem,
hot reload counts them as invalid reloads, and URL fields are checked at validation time
(issue 18, item 6)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.reload import ProfileWatcher
from llmsim.proxy.state import ProxyState

BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "the file is empty"),
    "only whitespace": (b"  \n\n", "the file is empty"),
    "only comments": (b"# nothing here\n", "the document is empty"),
    "invalid UTF-8": (b"latency:\n  ttftMs: {type: constant, value: 5}\n# caf\xe9\n", "not valid UTF-8: byte 0xe9"),
    "deep YAML": (b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n", "nested too deeply"),
    "deep JSON": (b'{"a": ' + b'{"b": ' * 200 + b"1" + b"}" * 200 + b"}", "nested too deeply"),
    "alias bomb": (
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
                   f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n".encode()
                   for i in range(8)),
        "too large",
    ),
}  # fmt: skip


def _llmsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmsim.cli.main", *args], capture_output=True, text=True, timeout=60
    )


def _one_line_naming(result: subprocess.CompletedProcess[str], path: Path, problem: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in (result.stdout + result.stderr).splitlines() if str(path) in line]
    assert len(lines) == 1, result.stdout + result.stderr
    assert problem in lines[0], lines[0]


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_profile_validate_rejects_a_bad_file_in_one_line(tmp_path: Path, name: str) -> None:
    content, problem = BAD_FILES[name]
    path = tmp_path / "profile.yaml"
    path.write_bytes(content)
    _one_line_naming(_llmsim("profile", "validate", str(path)), path, problem)


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_load_rejects_a_bad_scenario_file_in_one_line_and_never_runs_the_default(
    tmp_path: Path, name: str
) -> None:
    content, problem = BAD_FILES[name]
    path = tmp_path / "scenario.yaml"
    path.write_bytes(content)
    result = _llmsim("load", "--scenario", str(path), "--out", str(tmp_path / "out"))
    _one_line_naming(result, path, problem)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_hot_reload_counts_a_bad_file_as_an_invalid_reload(tmp_path: Path, name: str) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(
        yaml.safe_dump({"latency": {"ttftMs": {"type": "constant", "value": 5}}}), encoding="utf-8"
    )
    from llmsim import profiles

    metrics = ProxyMetrics()
    state = ProxyState(profiles.load_file(path))
    watcher = ProfileWatcher(path, state, metrics)
    path.write_bytes(BAD_FILES[name][0])
    assert watcher.check() is False
    assert metrics.registry.get_sample_value("llmsim_proxy_profile_reloads_total", {"result": "invalid"}) == 1
    assert state.profile.name == "profile"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "is not a URL"),
        ("http://127.0.0.1:6379/0", "expected redis:// or rediss:// or unix://"),
        ("redis://:6379/0", "no host"),
        ("redis://cache:99999/0", "port"),
        ("redis://cache:6379/zero", "database number"),
    ],
)
def test_a_bad_redis_url_fails_validation_naming_the_field(tmp_path: Path, url: str, problem: str) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"faults": {"rateLimits": {"requestsPerMinute": 5, "scope": "shared",
                                                              "redisUrl": url}}}), encoding="utf-8")  # fmt: skip
    result = _llmsim("profile", "validate", str(path))
    _one_line_naming(result, path, "faults.rateLimits.redisUrl: ")
    assert problem in result.stdout + result.stderr


def test_good_redis_urls_validate(tmp_path: Path) -> None:
    for url in ("redis://cache:6379/0", "rediss://user:pw@cache.example.com", "unix:///run/redis.sock"):
        path = tmp_path / "profile.yaml"
        path.write_text(yaml.safe_dump({"faults": {"rateLimits": {"requestsPerMinute": 5, "scope": "shared",
                                                                  "redisUrl": url}}}), encoding="utf-8")  # fmt: skip
        result = _llmsim("profile", "validate", str(path))
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_target_url_fails_scenario_validation_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({"target": {"url": "http://host:notaport"}}), encoding="utf-8")
    result = _llmsim("load", "--scenario", str(path), "--out", str(tmp_path / "out"))
    _one_line_naming(result, path, "target.url: ")
