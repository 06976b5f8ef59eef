"""Frames leave at their absolute deadlines; errors do not accumulate over a long stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import numpy as np

from simserver import SimServer

CONSTANT = {
    "seed": 1,
    "latency": {
        "ttftMs": {"type": "constant", "value": 100},
        "itlMs": {"type": "constant", "value": 5},
        "outputTokens": {"type": "constant", "value": 200},
    },
}


async def stream_arrivals(url: str, n: int = 1) -> list[list[float]]:
    """Send n concurrent streaming chat requests; return per-stream token arrival times (s since send)."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    async def one(session: aiohttp.ClientSession) -> list[float]:
        t0 = time.perf_counter()
        times: list[float] = []
        async with session.post(url + "/v1/chat/completions", json=body) as response:
            assert response.status == 200
            async for line in response.content:
                if line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
                    times.append(time.perf_counter() - t0)
        return times

    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(one(session) for _ in range(n))))


def test_token_deadlines_are_absolute(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(CONSTANT)
    [times] = asyncio.run(stream_arrivals(server.url))
    assert len(times) == 200
    ttft, last = times[0], times[-1]
    # 100 ms TTFT; the 200th token is due 199 * 5 ms later. An accumulating sleep(itl) loop would
    # drift by the per-sleep overhead (~0.1-1 ms) 199 times over; absolute deadlines do not.
    assert abs(ttft - 0.100) < 0.030
    assert abs((last - ttft) - 199 * 0.005) < 0.030
    gaps = np.diff(times)
    assert abs(float(np.median(gaps)) - 0.005) < 0.002


def test_concurrent_streams_keep_their_timing(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory({**CONSTANT, "latency": {**CONSTANT["latency"], "itlMs": {"type": "constant", "value": 20},  # type: ignore[dict-item]
                                                         "outputTokens": {"type": "constant", "value": 20}}})  # fmt: skip
    streams = asyncio.run(stream_arrivals(server.url, n=50))
    ends = [s[-1] - s[0] for s in streams]
    assert all(len(s) == 20 for s in streams)
    assert max(abs(e - 19 * 0.020) for e in ends) < 0.050
