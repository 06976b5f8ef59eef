"""`llmsim load` and `llmsim report merge` end to end through the CLI entry point."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmsim.cli.main import main

SECRET = "sk-load-test-secret-value"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "pattern: {type: steady, rps: -1}\n",
            "pattern.steady.rps: Input should be greater than or equal to 0",
        ),
        ("pattern: {type: zigzag}\n", "pattern: Input tag 'zigzag' found using 'type' does not match"),
        ("durationS: 10\nrsp: 5\n", "rsp: unknown field"),
        ("slos: [{metric: ttft_ms, threshold: 5}]\n", "slos[0]: percentile: required for ttft_ms"),
        ("target: [1, 2\n", "not valid YAML/JSON"),
        ("- just\n- a list\n", "<root>: expected a mapping, got list"),
        ("kind: Pod\n", "kind: expected LoadScenario"),
    ],
)
def test_bad_scenario_files_get_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    code, _, err = run_cli(["load", "--scenario", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert expected in err and str(path) in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--duration", "3600", "--rps", "10000"], "at most 20,000,000 per run"),
        (["--duration", "100"], "windowS: 0.001 s over durationS 100 s makes 100,000 windows"),
    ],
)
def test_runs_too_big_to_hold_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("windowS: 0.001\n" if "--rps" not in flags else "{}\n")
    code, _, err = run_cli(
        ["load", "--scenario", str(scenario), *flags, "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and expected in err


def test_missing_scenario_file_and_missing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(["load", "--scenario", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "cannot read the file" in err
    monkeypatch.delenv("LLMSIM_TEST_NO_SUCH_KEY", raising=False)
    argv = ["load", "--api-key-env", "LLMSIM_TEST_NO_SUCH_KEY", "--duration", "1", "--out", str(tmp_path)]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "LLMSIM_TEST_NO_SUCH_KEY is not set" in err


def test_an_unreachable_target_gives_a_partial_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["load", "--target", f"http://127.0.0.1:{port}", "--duration", "20", "--rps", "40",
            "--out", str(tmp_path), "--quiet"]  # fmt: skip
    code, _, err = run_cli(argv, capsys)
    assert code == 3
    assert f"127.0.0.1:{port} is unreachable" in err
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["run"]["complete"] is False and doc["summary"]["errors_by_type"]["connect"] >= 10
    assert (tmp_path / "report.html").stat().st_size > 10_000


def test_a_run_writes_reports_without_the_key_and_judges_slos(
    sim_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMSIM_TEST_KEY", SECRET)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "target: {provider: anthropic, model: claude-sonnet-4, apiKey: {env: LLMSIM_TEST_KEY}}\n"
        "pattern: {type: steady, rps: 8}\narrival: constant\n"
        "slos: [{metric: ttft_ms, percentile: 50, threshold: 5000}, {metric: error_rate, threshold: 0.5}]\n"
    )
    out = tmp_path / "out"
    argv = [
        "load",
        "--scenario",
        str(scenario),
        "--target",
        sim_server.url,
        "--duration",
        "1",
        "--out",
        str(out),
    ]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0, stdout
    assert "ttft_ms" in stdout and "SLO PASS" in stdout and f"wrote {out / 'report.html'}" in stdout
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"]["requests"] == 8 and doc["summary"]["failed"] == 0
    assert doc["scenario"]["target"]["apiKey"] == {"env": "LLMSIM_TEST_KEY", "file": None}
    for name in ("report.json", "report.html"):
        assert SECRET not in (out / name).read_text()
    # The same run with an SLO it cannot meet exits 1.
    scenario.write_text(scenario.read_text().replace("threshold: 5000", "threshold: 0.001"))
    code, stdout, _ = run_cli([*argv, "--no-html", "--quiet", "--duration", "0.3"], capsys)
    assert code == 1


def test_parallel_workers_and_merge(
    sim_server_factory: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = sim_server_factory()
    base = ["load", "--target", server.url, "--duration", "0.5", "--rps", "24", "--seed", "4", "--quiet"]
    code, _, err = run_cli([*base, "--parallelism", "3", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--worker-index" in err
    for i in range(3):
        code, out, _ = run_cli(
            [*base, "--parallelism", "3", "--worker-index", str(i), "--out", str(tmp_path)], capsys
        )
        assert code == 0 and f"partial-{i}.json" in out
    partials = [str(tmp_path / f"partial-{i}.json") for i in range(3)]
    code, out, _ = run_cli(
        ["report", "merge", *partials, "--out", str(tmp_path / "merged"), "--quiet"], capsys
    )
    assert code == 0
    doc = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert doc["run"]["workers"] == [0, 1, 2] and doc["run"]["complete"]
    assert doc["summary"]["requests"] == doc["run"]["scheduled"] > 0
    assert doc["summary"]["requests"] == sum(
        json.loads(Path(p).read_text())["partial"]["total"]["requests"] for p in partials
    )
    code, _, err = run_cli(
        ["report", "merge", partials[0], partials[0], "--out", str(tmp_path / "x")], capsys
    )
    assert code == 2 and "more than one partial" in err
    code, _, err = run_cli(["report", "merge", str(tmp_path / "merged" / "report.json")], capsys)
    assert code == 2 and "not a partial result" in err


@pytest.mark.slow
def test_an_interrupted_run_still_writes_its_report(sim_server: Any, tmp_path: Path) -> None:
    model = f"interrupt-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "llmsim.cli.main", "load", "--target", sim_server.url, "--duration", "60",
           "--rps", "10", "--model", model, "--out", str(tmp_path), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not sim_server_saw(sim_server, model) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err.decode()
    assert b"Traceback" not in out + err and b"interrupted by SIGINT" in err
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["run"]["complete"] is False and doc["run"]["notes"][0] == "interrupted by SIGINT"
    assert 0 < doc["summary"]["requests"] < 600
    assert (tmp_path / "report.html").exists()


def sim_server_saw(server: Any, model: str) -> bool:
    """Whether the simulator counted a request for `model` (so the load generator is running)."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=2) as resp:
        return f'model="{model}"' in resp.read().decode()
