"""Every example scenario is valid, aims at `llmsim serve`'s default address, and runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llmsim.api.scenario import ClosedLoop, LoadScenarioSpec, WorkflowRun
from llmsim.loadgen import patterns, report, runner
from llmsim.loadgen.scenario_file import load_file

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
PATTERN_TYPES = {"steady", "ramp_up", "spike", "wave", "step", "diurnal", "chaos", "closed_loop", "workflow"}
CLOSED_LOOP = {"closed_loop", "workflow"}


def examples() -> dict[str, LoadScenarioSpec]:
    return {path.stem: load_file(path) for path in sorted(FOLDER.glob("*.yaml"))}


def test_there_is_one_example_per_pattern_named_after_it() -> None:
    specs = examples()
    assert set(specs) == PATTERN_TYPES
    for name, spec in specs.items():
        assert spec.pattern.type == name
        assert spec.target.url == "http://127.0.0.1:8080"
        assert spec.slos, f"{name}: examples show SLOs"
        if isinstance(spec.pattern, ClosedLoop | WorkflowRun):
            continue
        assert patterns.expected_count(spec.pattern, spec.duration_s, 0, spec.duration_s, spec.seed) > 10


@pytest.mark.slow
async def test_every_example_runs_against_the_simulator(sim_server: Any) -> None:
    # Shortened to one second each and run side by side against a fast simulator profile.
    async def run(spec: LoadScenarioSpec) -> dict[str, Any]:
        doc = spec.model_dump(mode="json", by_alias=True)
        doc["target"]["url"] = sim_server.url
        if doc["pattern"]["type"] == "workflow":
            doc["pattern"]["thinkTimeS"] = None  # three turns must fit into the shortened second
        short = LoadScenarioSpec.model_validate(doc | {"durationS": 1.0, "windowS": 0.5})
        return report.build(short, await runner.run_worker(short, api_key=None, base_dir=FOLDER))

    specs = examples()
    reports = await asyncio.gather(*(run(spec) for spec in specs.values()))
    for name, doc in zip(specs, reports, strict=True):
        summary = doc["summary"]
        assert summary["requests"] > 0 and summary["failed"] == 0, (name, doc["errors"])
        if name == "workflow":
            assert (
                doc["workflows"]["trip-planner"]["succeeded"] > 0
                and doc["workflows"]["trip-planner"]["failed"] == 0
            )
            continue  # a shortened run cannot do all 40 iterations: incomplete by design
        assert doc["run"]["complete"], name
