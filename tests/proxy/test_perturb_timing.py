"""perturb mode against a fake provider with known timing: added TTFT, added per-chunk delay,
slowdown, incremental forwarding, stream faults and substituted errors.

Upstream, proxy and client share one event loop, so the upstream's write times and the client's
arrival times are on one clock. Timing is checked with bounds that cannot flake: an event never
arrives before the upstream sent it plus what the profile adds (the deadlines are absolute and
never early), and its lateness is bounded by noise measured in the same test (the path's own delay
in a passthrough run, and how late the loop fired the upstream's own timers)."""

from __future__ import annotations

import asyncio
import json
import statistics

import aiohttp
import pytest

from llmsim.api.profile import Mode

from .conftest import ProxyFactory, client_ssl, timed_stream
from .fakes import Upstream

pytestmark = pytest.mark.slow

ADDED_TTFT_MS = 150
ADDED_ITL_MS = 25
EARLY_S = 1e-6
"""Float rounding between loop-time readings; anything earlier than this is a bug, not noise."""


def perturb_spec(ttft_ms: float, itl_ms: float, **faults: object) -> dict[str, object]:
    return {
        "seed": 1,
        "mode": "perturb",
        "latency": {
            "ttftMs": {"type": "constant", "value": ttft_ms},
            "itlMs": {"type": "constant", "value": itl_ms},
        },
        "faults": {"params": {"afterTokens": 3, "slowStreamFactor": 3}, **faults},
    }


def lateness(upstream: Upstream, times: list[float], added_ttft_s: float, added_itl_s: float) -> list[float]:
    """Per token event: client arrival minus the earliest moment the profile allows (the upstream's
    write time plus the added TTFT and one added gap per earlier event)."""
    sent = upstream.sent_at[-1]
    return [times[k] - (sent[k] + added_ttft_s + k * added_itl_s) for k in range(upstream.tokens)]


def timer_lateness(upstream: Upstream) -> list[float]:
    """How late the loop fired the upstream's own timers in its last stream."""
    start, sent = upstream.started_at[-1], upstream.sent_at[-1]
    return [t - (start + upstream.ttft_s + k * upstream.itl_s) for k, t in enumerate(sent)]


async def test_added_ttft_and_chunk_delay_match_the_profile(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    control = await proxy_factory(perturb_spec(0, 0), mode=Mode.PASSTHROUGH)
    _, _, times, _ = await timed_stream(control)
    path_delay = lateness(upstream, times, 0.0, 0.0)
    proxy = await proxy_factory(perturb_spec(ADDED_TTFT_MS, ADDED_ITL_MS))
    status, start, times, body = await timed_stream(proxy)
    assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    assert len(times) == upstream.tokens + 2  # 10 token events, the finish chunk, [DONE]
    late = lateness(upstream, times, ADDED_TTFT_MS / 1000, ADDED_ITL_MS / 1000)
    assert min(late) >= -EARLY_S, "never earlier than the profile's added TTFT and gaps"
    noise = max(path_delay) + max(timer_lateness(upstream))
    assert statistics.median(late) <= noise, (late, path_delay)
    assert times[0] - start > upstream.ttft_s + ADDED_TTFT_MS / 1000


async def test_slow_stream_multiplies_the_upstream_gaps(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory(perturb_spec(0, 0))
    _, _start, times, _ = await timed_stream(proxy, headers={"x-llmsim-fault": "slow_stream"})
    sent = upstream.sent_at[-1]
    upstream_span = sent[upstream.tokens - 1] - sent[0]
    client_span = times[upstream.tokens - 1] - times[0]
    # factor 3 (exact deadlines: test_perturb.py); 1 would be no slowdown: the span sits far above 2x
    assert client_span >= 2 * upstream_span, (client_span, upstream_span)
    assert min(lateness(upstream, times, 0.0, 0.0)) >= -EARLY_S


async def test_the_stream_stays_incremental(proxy_factory: ProxyFactory, upstream: Upstream) -> None:
    upstream.tokens, upstream.itl_s = 10, 0.03
    for mode in (Mode.PASSTHROUGH, Mode.PERTURB):
        proxy = await proxy_factory(perturb_spec(0, 5), mode=mode)
        _, _, times, _ = await timed_stream(proxy)
        last_sent_upstream = upstream.sent_at[-1][-1]
        # the client holds the first event long before the upstream has even sent the last one
        assert times[0] < last_sent_upstream - 0.2, (mode, times[0], last_sent_upstream)


async def test_disconnect_cuts_the_stream_after_the_configured_chunks(proxy_factory: ProxyFactory) -> None:
    proxy = await proxy_factory(perturb_spec(0, 0))
    status, _, times, body = await timed_stream(proxy, headers={"x-llmsim-fault": "disconnect"})
    assert status == 200
    assert times[-1] == -1.0 and len(times) == 3 + 1
    assert b"[DONE]" not in body


async def test_midstream_error_sends_the_providers_error_event(proxy_factory: ProxyFactory) -> None:
    proxy = await proxy_factory(perturb_spec(0, 0))
    _, _, times, body = await timed_stream(proxy, headers={"x-llmsim-fault": "midstream_error"})
    assert len(times) == 4 and times[-1] != -1.0
    assert body.rstrip().endswith(b'"code":null}}')


async def test_status_faults_are_substituted_without_reaching_upstream(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory(perturb_spec(0, 0, rates={"rate_limit": 1.0}))
    status, _, _, body = await timed_stream(proxy)
    assert status == 429 and b"rate_limit_exceeded" in body
    assert upstream.requests == []


async def test_rate_limits_sit_in_front_of_the_real_provider(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    spec = perturb_spec(0, 0, rateLimits={"requestsPerMinute": 2, "keyBy": ["api_key"]})
    proxy = await proxy_factory(spec)
    statuses = [(await timed_stream(proxy, headers={"Authorization": "Bearer k1"}))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(upstream.requests) == 2
    other_key = await timed_stream(proxy, headers={"Authorization": "Bearer k2"})
    assert other_key[0] == 200 and len(upstream.requests) == 3


async def test_compressed_streams_are_relayed_as_they_come(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    upstream.itl_s = 0.03
    proxy = await proxy_factory(perturb_spec(0, 2))
    status, _, times, body = await timed_stream(proxy, path="/v1/gzip/chat/completions")
    assert status == 200 and body.endswith(b"data: [DONE]\n\n") and len(times) == upstream.tokens + 1
    assert times[0] < upstream.sent_at[-1][-1] - 0.2  # not held back until the stream ends


async def test_the_data_path_counts_requests_in_flight_for_the_gc_policy(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory(perturb_spec(0, 0))
    seen: list[int] = []

    async def watch() -> None:
        while True:
            seen.append(proxy.datapath.in_flight)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        status, *_ = await timed_stream(proxy)
    finally:
        watcher.cancel()
    assert status == 200 and max(seen) == 1 and proxy.datapath.in_flight == 0


async def test_timeout_holds_the_request_then_cuts_it_without_reaching_upstream(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory({**perturb_spec(0, 0), "faults": {"params": {"timeoutS": 0.2}}})
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await timed_stream(proxy, headers={"x-llmsim-fault": "timeout"})
    assert loop.time() - started >= 0.2, "held for timeoutS before the cut"
    assert upstream.requests == []


async def test_a_whole_body_that_meets_a_stream_fault_is_cut_or_truncated_as_the_simulator_does(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory(perturb_spec(0, 0))
    assert proxy.listen_address is not None
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:

        async def post(fault: str) -> tuple[int, bytes | None]:
            async with session.post(
                "https://api.openai.com/v1/chat/completions", json=chat, headers={"x-llmsim-fault": fault},
                proxy=f"http://127.0.0.1:{proxy.listen_address[1]}", ssl=client_ssl(proxy),
            ) as resp:  # fmt: skip
                try:
                    return resp.status, await resp.read()
                except aiohttp.ClientPayloadError:
                    return resp.status, None

        status, cut = await post("disconnect")
        assert status == 200 and cut is None, "half the body, then the connection is cut"
        status, truncated = await post("malformed_chunk")
        assert status == 200 and truncated is not None and truncated.startswith(b'{"id": "chatcmpl-up"')
        with pytest.raises(ValueError):
            json.loads(truncated)
    assert len(upstream.requests) == 2


async def test_safety_faults_leave_a_forwarded_answer_as_it_came(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    """A real answer cannot be made to refuse: `refusal` and `content_filter` pass it through."""
    proxy = await proxy_factory(perturb_spec(0, 0))
    seen: list[str | None] = []
    proxy.runtime.finished.append(lambda record: seen.append(record.fault))
    status, _, _, plain = await timed_stream(proxy)
    for fault in ("refusal", "content_filter"):
        got_status, _, _, body = await timed_stream(proxy, headers={"x-llmsim-fault": fault})
        assert (got_status, body) == (status, plain) == (200, plain)
    assert seen == [None, None, None] and len(upstream.requests) == 3
