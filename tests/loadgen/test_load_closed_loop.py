"""Closed-loop users and multi-turn workflows, end to end against a real `llmsim serve` process.

The profile is constant-latency (TTFT 40 ms, ITL 4 ms, 10 tokens: E2E 76 ms on the server), so
counts and concurrency follow from the pattern: a user with no think time always has one request
in flight, and Little's law ties the mean concurrency to the rate and the mean E2E.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serveproc
import yaml

from llmsim.api.scenario import LoadScenarioSpec
from llmsim.loadgen import report, runner

PROFILE = {
    "seed": 1,
    "latency": {
        "ttftMs": {"type": "constant", "value": 40},
        "itlMs": {"type": "constant", "value": 4},
        "outputTokens": {"type": "constant", "value": 10},
    },
}
E2E_S = 0.040 + 9 * 0.004
PROVIDERS = ("openai", "azure", "anthropic", "gemini", "ollama")


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("profile") / "profile.yaml"
    path.write_text(yaml.safe_dump(PROFILE))
    with serveproc.serve(path) as url:
        yield url


def spec(url: str, pattern: dict[str, Any], **kw: Any) -> LoadScenarioSpec:
    doc: dict[str, Any] = {
        "target": {"url": url, "model": "gpt-4o-mini"},
        "durationS": 2.0,
        "windowS": 0.5,
        "pattern": pattern,
        "requests": {"promptTokens": {"type": "constant", "value": 20}},
    }
    return LoadScenarioSpec.model_validate(doc | kw)


async def run(s: LoadScenarioSpec) -> dict[str, Any]:
    return report.build(s, await runner.run_worker(s, api_key=None))


@pytest.mark.slow
async def test_users_without_think_time_keep_one_request_each_in_flight(serve_url: str) -> None:
    doc = await run(spec(serve_url, {"type": "closed_loop", "users": 4}))
    s = doc["summary"]
    assert s["failed"] == 0 and doc["run"]["complete"], doc["errors"]
    assert s["target_rps"] is None and s["availability"] == 1.0
    # Each request takes at least the server's 76 ms: at most 4 users * ceil(2 s / 76 ms) requests.
    assert 40 <= s["requests"] <= 4 * 27, s["requests"]
    inner = doc["windows"][1:-1]  # the first and last windows hold the start-up and the drain
    for w in inner:
        assert 3.3 <= w["concurrency"] <= 4.0 + 1e-6, w  # one in flight per user, minus client gaps
        assert w["target_concurrency"] == 4
    assert s["concurrency"]["max_window"] <= 4.0 + 1e-6
    assert doc["recommendations"] == []  # constant concurrency, flat latency: nothing to say


@pytest.mark.slow
async def test_think_time_and_littles_law(serve_url: str) -> None:
    pattern = {"type": "closed_loop", "users": 4, "thinkTimeS": {"type": "constant", "value": 0.2}}
    doc = await run(spec(serve_url, pattern))
    s = doc["summary"]
    cycle = E2E_S + 0.2
    assert s["requests"] <= 4 * (int(2.0 / cycle) + 1), s["requests"]
    e2e_mean_s = doc["latency"]["e2e_ms"]["mean"] / 1000
    elapsed = doc["run"]["elapsed_s"]
    # Little's law: mean in flight = completions per second * mean time in the system.
    assert s["concurrency"]["mean"] == pytest.approx(s["requests"] / elapsed * e2e_mean_s, rel=0.05)
    assert s["concurrency"]["mean"] < 4 * E2E_S / cycle * 1.3


@pytest.mark.slow
async def test_iterations_bound_the_run_and_the_ramp_staggers_users(serve_url: str) -> None:
    doc = await run(spec(serve_url, {"type": "closed_loop", "users": 3, "iterations": 10}))
    assert doc["summary"]["requests"] == 10 and doc["run"]["complete"] and doc["run"]["scheduled"] == 10
    ramp = await run(spec(serve_url, {"type": "closed_loop", "users": 4, "rampUpS": 1.5}))
    wins = ramp["windows"]
    # Users start at 0, 0.375, 0.75 and 1.125 s: the mean started over each 0.5 s window.
    assert [w["target_concurrency"] for w in wins[:4]] == [1.25, 2.5, 3.75, 4.0]
    assert wins[0]["concurrency"] < wins[-2]["concurrency"]
    short = await run(spec(serve_url, {"type": "closed_loop", "users": 1, "iterations": 10_000}))
    assert not short["run"]["complete"]
    assert (
        "ended the run after" in short["run"]["notes"][0] and "of 10000 requests" in short["run"]["notes"][0]
    )


@pytest.mark.slow
async def test_a_ramp_of_users_finds_the_throughput_plateau_of_a_capacity_limited_target(
    tmp_path: Path,
) -> None:
    # 6 decode slots with a 3x TTFT slowdown at full load: past a few requests in flight the
    # throughput stops growing while TTFT keeps growing with the users.
    limited = PROFILE | {
        "latency": PROFILE["latency"] | {"capacity": {"maxConcurrency": 6, "ttftSlowdown": 3}}
    }
    path = tmp_path / "limited.yaml"
    path.write_text(yaml.safe_dump(limited))
    with serveproc.serve(path) as url:
        pattern = {"type": "closed_loop", "users": 24, "rampUpS": 7}
        doc = await run(spec(url, pattern, durationS=8.0, windowS=1.0))
    rec = next((r for r in doc["recommendations"] if r["rule"] == "throughput_plateau"), None)
    assert rec is not None, [
        (w["concurrency"], w["achieved_rps"], w["latency"]["ttft_ms"]["p50"]) for w in doc["windows"]
    ]
    ev = rec["evidence"]
    assert ev["highest_concurrency"] > 2 * ev["concurrency_at_plateau"]
    assert ev["ttft_p50_at_highest_ms"] > 1.5 * ev["ttft_p50_at_plateau_ms"]
    assert f"{ev['plateau_rps']:.3g} req/s" in rec["message"]


def workflow_spec(url: str, provider: str, **pattern: Any) -> LoadScenarioSpec:
    return spec(
        url,
        {"type": "workflow", "parallelWorkflows": 2, "iterations": 4, **pattern},
        durationS=10.0,
        windowS=1.0,
        target={"url": url, "provider": provider, "model": "gpt-4o-mini"},
        workflows=[
            {
                "id": "weather-agent",
                "system": "You are a weather assistant.",
                "tools": [
                    {
                        "name": "get_weather",
                        "description": "Current weather in a city",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                        "result": {"temp_c": 21, "sky": "clear"},
                    }
                ],
                "turns": [
                    {
                        "user": "What is the weather in Paris?",
                        "tools": ["get_weather"],
                        "toolChoice": "required",
                    },
                    {"user": "And should I take an umbrella?"},
                ],
            }
        ],
    )


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_tool_using_workflow_runs_against_every_provider_format(
    serve_url: str, provider: str
) -> None:
    doc = await run(workflow_spec(serve_url, provider))
    assert doc["summary"]["failed"] == 0, doc["errors"]
    wf = doc["workflows"]["weather-agent"]
    assert (wf["started"], wf["succeeded"], wf["failed"], wf["abandoned"]) == (4, 4, 0, 0), wf
    assert wf["success_rate"] == 1.0
    first, second = wf["turns"]
    # Turn 0: the forced call, its tool result, then the answer: two requests per conversation.
    # Ollama's API has no tool choice: there the default profile's toolCallShare (1 on a user turn
    # with tools offered) makes the call, so every format takes one tool round.
    rounds = 1
    assert (first["requests"], first["tool_rounds"], first["completed"]) == (4 + 4 * rounds, 4 * rounds, 4), (
        first
    )
    assert (second["requests"], second["tool_rounds"], second["completed"]) == (4, 0, 4), second
    assert doc["summary"]["requests"] == 8 + 4 * rounds
    # A turn with a tool round takes two server round trips; the conversation one more.
    assert first["e2e_ms"]["p50"] >= (1 + rounds) * E2E_S * 1000 * 0.95
    assert wf["e2e_ms"]["count"] == 4 and wf["e2e_ms"]["p50"] >= (2 + rounds) * E2E_S * 1000 * 0.95
    assert first["ttft_ms"]["count"] == 4 and first["ttft_ms"]["p50"] >= 40
    assert doc["recommendations"] == [] or all(
        r["rule"] != "workflow_failures" for r in doc["recommendations"]
    )


@pytest.mark.slow
async def test_a_model_that_keeps_calling_tools_fails_the_turn_as_a_tool_loop(tmp_path: Path) -> None:
    # A profile rule answers every get_weather result with another get_weather call: the
    # conversation never reaches an answer and maxToolRounds must end it.
    looping = PROFILE | {
        "content": {
            "rules": [
                {
                    "toolResult": {"name": "get_weather"},
                    "toolCall": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ]
        }
    }
    path = tmp_path / "looping.yaml"
    path.write_text(yaml.safe_dump(looping))
    with serveproc.serve(path) as url:
        s = workflow_spec(url, "openai")
        doc_flows = s.model_dump(mode="json", by_alias=True)
        doc_flows["workflows"][0]["maxToolRounds"] = 2
        doc = await run(LoadScenarioSpec.model_validate(doc_flows))
    wf = doc["workflows"]["weather-agent"]
    assert wf["failed"] == 4 and wf["failures"] == {"tool_loop": 4} and wf["success_rate"] == 0.0
    assert wf["turns"][0]["requests"] == 4 * 3 and wf["turns"][0]["failed"] == 4
    rec = next(r for r in doc["recommendations"] if r["rule"] == "workflow_failures")
    assert "maxToolRounds" in rec["message"] and rec["evidence"]["failures"] == {"tool_loop": 4}


@pytest.mark.slow
def test_the_cli_runs_the_example_scenarios_against_serve(serve_url: str, tmp_path: Path) -> None:
    # `llmsim load --scenario` as a user runs it, shortened, against the served simulator.
    folder = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
    for name in ("closed_loop", "workflow"):
        out = tmp_path / name
        cmd = [
            sys.executable, "-m", "llmsim.cli.main", "load", "--scenario", str(folder / f"{name}.yaml"),
            "--target", serve_url, "--duration", "3", "--out", str(out), "--no-html", "--quiet",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        doc = json.loads((out / "report.json").read_text())
        assert doc["schema_version"] == 2 and doc["summary"]["requests"] > 0 and doc["summary"]["failed"] == 0
        if name == "closed_loop":
            assert result.returncode == 0, result.stderr
            assert doc["run"]["complete"], doc["run"]["notes"]
        else:  # 3 s cannot hold the 40 iterations asked for: a partial run, said so, exit 3
            assert result.returncode == 3, result.stderr
            assert "of 40 conversations (iterations)" in doc["run"]["notes"][0]
            assert doc["workflows"]["trip-planner"]["succeeded"] > 0


@pytest.mark.slow
async def test_workers_split_the_slots_and_iterations_and_merge_exactly(serve_url: str) -> None:
    s = workflow_spec(serve_url, "anthropic")
    doc = s.model_dump(mode="json", by_alias=True)
    doc["parallelism"] = 2
    doc["pattern"]["iterations"] = 5
    two = LoadScenarioSpec.model_validate(doc)
    parts = [await runner.run_worker(two, api_key=None, worker_index=i) for i in (0, 1)]
    assert [p.scheduled for p in parts] == [3, 2]  # 5 iterations: the first worker takes the remainder
    merged_spec, merged = report.merge_partials([(two, p) for p in parts])
    out = report.build(merged_spec, merged)
    wf = out["workflows"]["weather-agent"]
    assert (
        (wf["started"], wf["succeeded"]) == (5, 5) and out["run"]["complete"] and out["run"]["scheduled"] == 5
    )
    assert out["summary"]["requests"] == sum(p.total.requests for p in parts) == 15
    assert out["histograms"]["workflows"]["weather-agent"]["e2e_ms"]["count"] == 5


@pytest.mark.slow
@pytest.mark.parametrize(
    "provider",
    ["anthropic", "gemini", "openai", "ollama"],
)
async def test_tool_calls_scripted_by_the_profile_get_their_results(tmp_path: Path, provider: str) -> None:
    scripted = PROFILE | {
        "content": {
            "rules": [
                {
                    "match": r"weather in (\w+)",
                    "toolCall": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ]
        }
    }
    path = tmp_path / "scripted.yaml"
    path.write_text(yaml.safe_dump(scripted))
    with serveproc.serve(path) as url:
        s = workflow_spec(url, provider).model_dump(mode="json", by_alias=True)
        s["workflows"][0]["turns"][0]["toolChoice"] = (
            "auto"  # the profile's rule decides, not a forced choice
        )
        doc = await run(LoadScenarioSpec.model_validate(s))
    wf = doc["workflows"]["weather-agent"]
    assert wf["succeeded"] == 4, wf
    assert wf["turns"][0]["tool_rounds"] == 4 and wf["turns"][1]["tool_rounds"] == 0
