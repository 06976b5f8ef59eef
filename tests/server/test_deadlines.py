"""The shared deadline scheduler: framing, timing, hand-back on slow readers, closed clients, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from llmsim import deadlines, streaming
from llmsim.providers.base import TRAILER, Frame
from simserver import SimServer


class FakeTransport:
    def __init__(self, loop: asyncio.AbstractEventLoop, buffered: int = 0) -> None:
        self.loop = loop
        self.writes: list[tuple[float, bytes]] = []
        self.closing = False
        self.buffered = buffered

    def write(self, data: bytes) -> None:
        self.writes.append((self.loop.time(), data))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


def frames(n: int, gap: float) -> list[Frame]:
    out = [Frame(gap * k, f"tok{k}".encode(), k) for k in range(n)]
    out.append(Frame(gap * (n - 1), b"[DONE]", TRAILER))
    return out


async def test_frames_go_out_as_http_chunks_at_their_deadlines() -> None:
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop)
    tokens: list[float] = []
    start = loop.time()
    handback = await deadlines.DeadlineScheduler(loop).play(
        transport, frames(10, 0.01), 0, start, tokens.append
    )
    assert handback.index == 11 and not handback.gone
    bodies = [data for _, data in transport.writes]
    assert bodies[0] == b"4\r\ntok0\r\n"
    assert bodies[-1] == b"a\r\ntok9[DONE]\r\n", "frames due together are written together"
    lateness = [t - (start + 0.01 * k) for k, (t, _) in enumerate(transport.writes)]
    assert all(0 <= late < 0.02 for late in lateness)
    assert len(tokens) == 10, "one token callback per token, none for the trailer"


async def test_many_streams_share_one_timer_and_each_keeps_its_own_clock() -> None:
    loop = asyncio.get_running_loop()
    scheduler = deadlines.DeadlineScheduler(loop)
    transports = [FakeTransport(loop) for _ in range(50)]
    start = loop.time()
    results = await asyncio.gather(
        *(
            scheduler.play(t, frames(5, 0.005 * (1 + i % 3)), 0, start + 0.001 * i, None)
            for i, t in enumerate(transports)
        )
    )
    assert all(r.index == 6 for r in results) and len(scheduler) == 0
    for i, t in enumerate(transports):
        gap = 0.005 * (1 + i % 3)
        for k, (when, _) in enumerate(t.writes[:4]):
            assert when >= start + 0.001 * i + gap * k


async def test_a_slow_reader_is_handed_back_for_awaited_writes() -> None:
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop, buffered=deadlines.HIGH_WATER + 1)
    handback = await deadlines.DeadlineScheduler(loop).play(
        transport, frames(10, 0.001), 0, loop.time(), None
    )
    assert handback.index == 1 and not handback.gone and len(transport.writes) == 1


async def test_a_closed_client_ends_the_job() -> None:
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop)
    transport.closing = True
    handback = await deadlines.DeadlineScheduler(loop).play(
        transport, frames(10, 0.001), 3, loop.time(), None
    )
    assert handback.gone and handback.index == 3 and transport.writes == []


async def test_a_cancelled_request_is_never_written_again() -> None:
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop)
    scheduler = deadlines.DeadlineScheduler(loop)
    task = asyncio.create_task(scheduler.play(transport, frames(20, 0.01), 0, loop.time(), None))
    await asyncio.sleep(0.035)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    written = len(transport.writes)
    await asyncio.sleep(0.05)
    assert len(transport.writes) == written and 2 <= written <= 5


def test_the_fast_path_sends_the_same_bytes_as_awaited_writes(
    sim_server_factory: Callable[..., SimServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = sim_server_factory()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"x-llmsim-seed": "5"}

    def fetch() -> bytes:
        return httpx.post(server.url + "/v1/chat/completions", json=body, headers=headers).content

    fast = fetch()
    monkeypatch.setattr(streaming, "FAST_PATH", False)
    slow = fetch()

    def normalise(raw: bytes) -> bytes:  # ids and timestamps differ per request
        import re

        return re.sub(rb'"(id|created)":"?[\w-]+"?', b"", raw)

    assert normalise(fast) == normalise(slow) and fast.endswith(b"data: [DONE]\n\n")


def test_take_due_counts_one_slot_per_token_index_across_choices() -> None:
    # Two choices: token k of both is due at the same time; the trailer is not a token.
    two_choices = [Frame(0.0, b"a0", 0), Frame(0.0, b"b0", 0), Frame(0.01, b"a1", 1), Frame(0.01, b"b1", 1),
                   Frame(0.01, b"end", TRAILER)]  # fmt: skip
    assert deadlines.take_due(two_choices, 0, 0.0) == (b"a0b0", 2, 1)
    assert deadlines.take_due(two_choices, 2, 0.05) == (b"a1b1end", 5, 1)
    assert deadlines.take_due(two_choices, 0, 1.0) == (b"a0b0a1b1end", 5, 2)


# -- feeds: frames that arrive while the stream plays (the proxy's perturbed relay) ----------------


async def test_a_feed_writes_pushed_frames_at_their_deadlines_in_order() -> None:
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop)
    written: list[float] = []
    feed = deadlines.DeadlineScheduler(loop).feed(transport, chunked=True, on_write=written.append)
    start = loop.time()
    due = [start + 0.02, start + 0.03, start + 0.03]
    feed.push(due[0], b"one")
    feed.push(due[1], b"two")
    feed.push(due[2], b"broken", counted=False)
    assert await feed.drained()
    bodies = [data for _, data in transport.writes]
    assert bodies == [b"3\r\none\r\n", b"9\r\ntwobroken\r\n"], "frames due together go out together"
    assert transport.writes[0][0] >= due[0] and transport.writes[1][0] >= due[1], "never early"
    assert len(written) == 2, "uncounted frames are not reported"


async def test_a_feed_that_runs_dry_parks_and_resumes_with_the_next_push() -> None:
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop)
    scheduler = deadlines.DeadlineScheduler(loop)
    feed = scheduler.feed(transport, chunked=False, on_write=None)
    feed.push(loop.time(), b"a")
    assert await feed.drained() and len(scheduler) == 0, "a dry feed leaves the heap"
    feed.push(loop.time() + 0.01, b"b")
    assert await feed.drained() and [data for _, data in transport.writes] == [b"a", b"b"], "raw framing"


async def test_a_feed_notices_a_gone_client_and_a_slow_reader() -> None:
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop)
    feed = deadlines.DeadlineScheduler(loop).feed(transport, chunked=True, on_write=None)
    assert not feed.backlogged
    transport.buffered = deadlines.HIGH_WATER + 1
    assert feed.backlogged
    transport.closing = True
    feed.push(loop.time(), b"lost")
    assert not await feed.drained() and feed.gone and transport.writes == []
    feed.push(loop.time(), b"ignored")
    assert not await feed.drained() and transport.writes == []


async def test_a_transport_that_raises_fails_only_its_own_feed() -> None:
    loop = asyncio.get_running_loop()

    class Broken(FakeTransport):
        def write(self, data: bytes) -> None:
            raise ConnectionResetError("gone")

    scheduler = deadlines.DeadlineScheduler(loop)
    broken = scheduler.feed(Broken(loop), chunked=True, on_write=None)
    healthy_transport = FakeTransport(loop)
    healthy = scheduler.feed(healthy_transport, chunked=True, on_write=None)
    broken.push(loop.time(), b"x")
    healthy.push(loop.time(), b"y")
    with pytest.raises(ConnectionResetError):
        await broken.drained()
    assert await healthy.drained() and healthy_transport.writes[0][1] == b"1\r\ny\r\n"
