"""The capacity model end to end: slots, FIFO queueing into TTFT, a full queue answers overloaded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import openai
import pytest

from llmsim.api.profile import Capacity
from llmsim.runtime.capacity_gate import CapacityGate, QueueFull
from simserver import SimServer

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def spec(max_queue: int | None = None) -> dict[str, object]:
    capacity: dict[str, object] = {"maxConcurrency": 2, "ttftSlowdown": 1, "itlSlowdown": 1}
    if max_queue is not None:
        capacity["maxQueue"] = max_queue
    return {"seed": 1, "latency": {"ttftMs": {"type": "constant", "value": 50}, "itlMs": {"type": "constant", "value": 10},
                                   "outputTokens": {"type": "constant", "value": 10}, "capacity": capacity}}  # fmt: skip


async def ttfts(url: str, n: int) -> list[float]:
    async def one(session: aiohttp.ClientSession) -> float:
        t0 = time.perf_counter()
        first: float | None = None
        async with session.post(url + "/v1/chat/completions", json=BODY) as response:
            async for line in response.content:  # read to the end: leaving early would free the slot early
                if first is None and b'"content":"' in line and b'"content":""' not in line:
                    first = time.perf_counter() - t0
        assert first is not None
        return first

    async with aiohttp.ClientSession() as session:
        return sorted(await asyncio.gather(*(one(session) for _ in range(n))))


def test_requests_beyond_max_concurrency_queue_and_their_wait_adds_to_ttft(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory(spec())
    # Each stream holds its slot for 50 ms + 9 * 10 ms = 140 ms; with 2 slots, requests 3-4 wait one
    # round and 5-6 two rounds.
    times = asyncio.run(ttfts(server.url, 6))
    assert all(abs(t - 0.05) < 0.04 for t in times[:2])
    assert all(abs(t - 0.19) < 0.05 for t in times[2:4])
    assert all(abs(t - 0.33) < 0.06 for t in times[4:])


def test_a_full_queue_is_rejected_as_overloaded(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(spec(max_queue=0))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)

    async def run() -> list[object]:
        async def one() -> object:
            try:
                return await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}]
                )
            except openai.APIStatusError as exc:
                return exc

        results = await asyncio.gather(*(one() for _ in range(4)))
        await client.close()
        return list(results)

    results = asyncio.run(run())
    errors = [r for r in results if isinstance(r, openai.APIStatusError)]
    assert len(errors) == 2 and all(e.status_code == 503 for e in errors)


async def test_gate_hands_slots_over_in_fifo_order() -> None:
    gate = CapacityGate(Capacity(max_concurrency=1))
    order: list[int] = []
    release = asyncio.Event()

    async def worker(i: int) -> None:
        async with gate.slot():
            order.append(i)
            await release.wait()

    tasks = [asyncio.create_task(worker(i)) for i in range(4)]
    await asyncio.sleep(0.01)
    assert order == [0] and gate.queued == 3
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3] and gate.active == 0


async def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    gate = CapacityGate(Capacity(max_concurrency=1, max_queue=5))
    holder_release = asyncio.Event()

    async def holder() -> None:
        async with gate.slot():
            await holder_release.wait()

    async def waiter() -> None:
        async with gate.slot():
            pass

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    w = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    w.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w
    holder_release.set()
    await h
    assert gate.active == 0 and gate.queued == 0
    async with gate.slot() as (active, queued_s):
        assert active == 1 and queued_s < 0.01


async def test_max_queue_raises_queue_full() -> None:
    gate = CapacityGate(Capacity(max_concurrency=1, max_queue=0))
    async with gate.slot():
        with pytest.raises(QueueFull):
            async with gate.slot():
                pass


def test_aliases_rename_the_reported_model(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(
        {
            "models": {"aliases": {"gpt-4": "gpt-4-0613"}},
            "latency": {"ttftMs": {"type": "constant", "value": 1}},
        }
    )
    r = openai.OpenAI(base_url=server.url + "/v1", api_key="k").chat.completions.create(
        model="gpt-4", messages=[{"role": "user", "content": "x"}], max_tokens=2
    )
    assert r.model == "gpt-4-0613"
