"""A worker against a fake provider on the test's event loop: timing, error types, fail-fast."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from loadfake import Fake, start

from llmsim.api.scenario import LoadScenarioSpec
from llmsim.loadgen import report, runner, sending
from llmsim.loadgen.results import Partial, RequestRecord


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Fake, str]]:
    fake = Fake(ttft_s=0.05, itl_s=0.01, tokens=8)
    server = await start(fake)
    try:
        yield fake, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


def scenario(url: str, provider: str = "openai", **kw: Any) -> LoadScenarioSpec:
    doc: dict[str, Any] = {
        "target": {"url": url, "provider": provider, "model": "gpt-4o-mini"},
        "durationS": 0.6,
        "pattern": {"type": "steady", "rps": 10},
        "arrival": "constant",
        "requests": {"promptTokens": {"type": "constant", "value": 20}},
    }
    for key, value in kw.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return LoadScenarioSpec.model_validate(doc)


PROVIDERS = ["openai", "azure", "anthropic", "gemini", "ollama"]


async def test_streams_are_timed_per_token(fake: tuple[Fake, str]) -> None:
    # Every provider's stream format at once, against the same fake.
    fake_server, url = fake
    partials = await asyncio.gather(*(runner.run_worker(scenario(url, p), api_key=None) for p in PROVIDERS))
    for provider, partial in zip(PROVIDERS, partials, strict=True):
        total = partial.total
        assert total.requests == 6 and total.failed == 0, (provider, partial.examples)
        assert total.output_tokens == 6 * 8, provider
        ttft = total.latency["ttft_ms"]
        itl = total.latency["itl_ms"]
        assert ttft.count == 6 and itl.count == 6 * 7, provider
        # The fake's timing plus event-loop noise on a shared 2-core machine.
        assert 49 <= (ttft.quantile(0.5) or 0) <= 80, (provider, ttft.summary())
        assert 8.5 <= (itl.quantile(0.5) or 0) <= 16, (provider, itl.summary())
        tpot = total.latency["tpot_ms"].quantile(0.5) or 0
        assert 8.5 <= tpot <= 16, provider
    assert len(fake_server.requests) == 30 and all(r["body"] for r in fake_server.requests)


async def test_non_streaming_requests_measure_end_to_end(fake: tuple[Fake, str]) -> None:
    _, url = fake
    providers = ["openai", "anthropic", "gemini", "ollama"]
    partials = await asyncio.gather(
        *(
            runner.run_worker(scenario(url, p, requests={"streamingShare": 0.0}), api_key=None)
            for p in providers
        )
    )
    for provider, partial in zip(providers, partials, strict=True):
        total = partial.total
        assert total.succeeded == 6 and total.latency["ttft_ms"].count == 0, provider
        assert (total.latency["e2e_ms"].quantile(0.5) or 0) >= 49, provider
        assert total.output_tokens > 0, provider


FAILURES = [
    ("429", "openai", "rate_limit"),
    ("429", "anthropic", "rate_limit"),
    ("429", "gemini", "rate_limit"),
    ("529", "anthropic", "overloaded"),
    ("500", "ollama", "server_error"),
    ("garbage", "openai", "malformed"),
    ("garbage", "gemini", "malformed"),
    ("disconnect", "openai", "disconnect"),
    ("disconnect", "ollama", "disconnect"),
    ("midstream", "openai", "midstream_error"),
    ("midstream", "anthropic", "midstream_error"),
    ("midstream", "gemini", "midstream_error"),
    ("midstream", "ollama", "midstream_error"),
]


async def test_failures_are_classified(fake: tuple[Fake, str]) -> None:
    _, url = fake
    specs = [scenario(url, p, target={"headers": {"x-fake": h}}, durationS=0.3) for h, p, _ in FAILURES]
    partials = await asyncio.gather(*(runner.run_worker(spec, api_key=None) for spec in specs))
    for (header, provider, kind), partial in zip(FAILURES, partials, strict=True):
        assert partial.total.errors == {kind: 3}, (header, provider, partial.examples)
        assert partial.examples[kind][0]


async def test_a_slow_target_times_out(fake: tuple[Fake, str]) -> None:
    _, url = fake
    spec = scenario(url, target={"headers": {"x-fake": "slow"}}, durationS=0.2, requestTimeoutS=0.3)
    partial = await runner.run_worker(spec, api_key=None)
    assert partial.total.errors == {"timeout": 2}
    assert "0.3 s" in partial.examples["timeout"][0]


async def test_an_unreachable_target_stops_early_with_a_clear_note() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = scenario(f"http://127.0.0.1:{port}", durationS=30, pattern={"type": "steady", "rps": 50})
    partial = await runner.run_worker(spec, api_key=None)
    assert partial.total.errors.get("connect", 0) >= sending.FAIL_FAST_AFTER
    assert partial.total.requests < 100  # did not hammer a dead target for 30 s
    assert "unreachable" in partial.notes[0] and str(port) in partial.notes[0]
    assert any("were not sent" in n for n in partial.notes)


async def test_a_rejected_key_stops_early(fake: tuple[Fake, str]) -> None:
    _, url = fake
    spec = scenario(
        url, target={"headers": {"x-fake": "401"}}, durationS=10, pattern={"type": "steady", "rps": 40}
    )
    partial = await runner.run_worker(spec, api_key="sk-wrong")
    assert "is rejecting the API key" in partial.notes[0]
    assert partial.total.errors.get("auth", 0) >= sending.FAIL_FAST_AFTER


async def test_the_api_key_is_sent_but_never_reported(fake: tuple[Fake, str]) -> None:
    fake_server, url = fake
    spec = scenario(url, "anthropic", durationS=0.2)
    partial = await runner.run_worker(spec, api_key="sk-very-secret-123")
    assert fake_server.requests[0]["headers"]["x-api-key"] == "sk-very-secret-123"
    assert "sk-very-secret-123" not in str(report.build(spec, partial))


async def test_queueing_behind_the_concurrency_cap_is_visible_from_the_intended_send(
    fake: tuple[Fake, str],
) -> None:
    # One slot, each request takes ~120 ms, arrivals every 50 ms: requests wait for the slot.
    # Latency from the actual send hides that; latency from the intended send shows it.
    _, url = fake
    spec = scenario(url, durationS=0.5, maxConcurrency=1, pattern={"type": "steady", "rps": 20})
    partial = await runner.run_worker(spec, api_key=None)
    actual = partial.total.latency["e2e_ms"].quantile(0.99) or 0
    intended = partial.total.intended["e2e_ms"].quantile(0.99) or 0
    assert actual < 200
    assert intended > actual + 300
    assert (partial.lag_ms.quantile(0.99) or 0) > 300


async def test_the_schedule_keeps_its_deadlines(fake: tuple[Fake, str]) -> None:
    _, url = fake
    spec = scenario(url, durationS=1.0, pattern={"type": "steady", "rps": 100})
    records: list[RequestRecord] = []
    original = Partial.add

    def keep(self: Partial, rec: RequestRecord, rng: Any) -> None:
        records.append(rec)
        original(self, rec, rng)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Partial, "add", keep)
        partial = await runner.run_worker(spec, api_key=None)
    assert partial.total.requests == 100
    assert (partial.lag_ms.quantile(0.5) or 0) < 10
    # Deadlines are absolute: lateness does not pile up over the run (relative sleeps would add
    # each sleep's overshoot, about a millisecond per request, so ~100 ms by the end).
    late = sorted(r.lag_s for r in records if r.intended_s > 0.75)
    assert late[len(late) // 2] < 0.015


async def test_a_target_answering_garbage_stops_early(fake: tuple[Fake, str]) -> None:
    _, url = fake
    spec = scenario(url, "anthropic", target={"headers": {"x-fake": "garbage"}}, durationS=10,
                    pattern={"type": "steady", "rps": 40})  # fmt: skip
    partial = await runner.run_worker(spec, api_key=None)
    assert "does not answer in the anthropic format" in partial.notes[0]
    assert "<html>not an API</html>" in partial.notes[0]  # what the target sent
    assert partial.total.requests < 100
