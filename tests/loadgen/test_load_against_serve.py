"""End to end against a real `llmsim serve` process with the constant-latency reference profile
(TTFT 250 ms, ITL 20 ms, 64 tokens): the load generator measures what the server was told to do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import serveproc

from llmsim.api.scenario import LoadScenarioSpec
from llmsim.loadgen import report, runner

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "examples" / "profiles" / "fixed-latency.yaml"


@pytest.fixture(scope="module")
def serve_url() -> Iterator[str]:
    """`llmsim serve` in its own process (so its timing does not share our GIL)."""
    with serveproc.serve(PROFILE) as url:
        yield url


def spec_for(url: str, provider: str, slos: list[dict[str, object]]) -> LoadScenarioSpec:
    return LoadScenarioSpec.model_validate(
        {
            "target": {"url": url, "provider": provider, "model": "gpt-4o-mini"},
            "durationS": 1.5,
            "pattern": {"type": "steady", "rps": 8},
            "arrival": "constant",
            "requests": {
                "maxTokens": {"type": "constant", "value": 256},
                "promptTokens": {"type": "constant", "value": 30},
            },
            "slos": slos,
        }
    )


@pytest.mark.slow
async def test_measured_timing_equals_the_profile_and_slo_verdicts_follow(serve_url: str) -> None:
    # Two providers' wire formats at once (SSE with bare data lines, and with named events).
    await asyncio.gather(check_provider(serve_url, "openai"), check_provider(serve_url, "anthropic"))


async def check_provider(serve_url: str, provider: str) -> None:
    slos = [
        {"metric": "ttft_ms", "percentile": 90, "threshold": 350},  # 250 ms configured: passes
        {"metric": "itl_ms", "percentile": 90, "threshold": 30},  # 20 ms configured: passes
        {"metric": "ttft_ms", "percentile": 50, "threshold": 240},  # below the configured 250: fails
        {"metric": "error_rate", "threshold": 0.01},
    ]
    spec = spec_for(serve_url, provider, slos)
    doc = report.build(spec, await runner.run_worker(spec, api_key=None))
    summary, latency = doc["summary"], doc["latency"]
    assert summary["requests"] == 12 and summary["failed"] == 0, doc["errors"]
    assert summary["output_tokens"] == 12 * 64, provider
    # Configured: TTFT 250 ms, ITL 20 ms. Tolerances allow for a busy shared 2-core machine.
    assert 249 <= latency["ttft_ms"]["p50"] <= 270, (provider, latency["ttft_ms"])
    assert latency["ttft_ms"]["p90"] <= 300, (provider, latency["ttft_ms"])
    assert 19 <= latency["itl_ms"]["p50"] <= 22, (provider, latency["itl_ms"])
    assert latency["itl_ms"]["count"] == 12 * 63, provider
    e2e_expected = 250 + 63 * 20
    assert e2e_expected - 5 <= latency["e2e_ms"]["p50"] <= e2e_expected + 80, (provider, latency["e2e_ms"])
    verdicts = [o["passed"] for o in doc["slo"]["objectives"]]
    assert verdicts == [True, True, False, True], (provider, doc["slo"])
    assert doc["slo"]["passed"] is False
