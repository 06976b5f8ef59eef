"""One timer for every stream: the fast path of `llmsim.streaming` and of the proxy's relay.

A stream that has sent its first frame (and so its HTTP headers) hands the rest of its frames to
the event loop's `DeadlineScheduler`: all of them at once when they are known in advance (`play`,
a simulated answer), or one by one as they arrive (`feed`, a perturbed upstream stream whose
frames are due at deadlines computed on arrival). The scheduler keeps a heap of each stream's next deadline and
one `loop.call_at` timer for the earliest; when it fires, it writes every due frame of every due
stream straight to its transport as an HTTP/1.1 chunk. Compared with one sleeping task per stream,
a token costs no future, no task wake-up and no trip through aiohttp's async write path, which is
what lets one core keep 1,000 streams on time.

A stream leaves the fast path when it is done, when its client is gone (the transport is closing),
or when its transport buffers more than `HIGH_WATER` bytes (a slow reader): then its own task
continues with awaited writes, which apply backpressure.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import math
import weakref
from collections.abc import Callable, Sequence
from typing import Protocol

from llmsim.providers.base import TRAILER, Frame

HIGH_WATER = 64 * 1024
"""Bytes buffered in a transport beyond which a stream goes back to awaited (backpressured) writes."""

TokenCallback = Callable[[float], None]


class WritableTransport(Protocol):
    """What the scheduler needs of a transport (asyncio's and uvloop's both qualify)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


def take_due(frames: Sequence[Frame], i: int, rel: float) -> tuple[bytes, int, int]:
    """Frame i and every later frame due by `rel` (seconds since admission), as one payload.

    Returns (payload, index of the next frame, token slots in the payload). Frames of one token
    index (n choices) are adjacent and due together, so they count as one slot.
    """
    n = len(frames)
    _, data, token = frames[i]
    batch = [data]
    slots = 1 if 0 <= token < TRAILER else 0
    last = token
    i += 1
    while i < n and frames[i][0] <= rel:
        _, data, token = frames[i]
        batch.append(data)
        if token != last and 0 <= token < TRAILER:
            slots += 1
        last = token
        i += 1
    return (data if len(batch) == 1 else b"".join(batch)), i, slots


class Handback:
    """Why a stream left the fast path: `index` is the next frame to send; `gone` if the client left."""

    __slots__ = ("gone", "index")

    def __init__(self, index: int, gone: bool) -> None:
        self.index = index
        self.gone = gone


def chunk(payload: bytes) -> bytes:
    """`payload` as one HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


class _Steps(Protocol):
    """What the scheduler drives: `step(now)` writes what is due and returns the next deadline (None:
    leave the heap); `fail(exc)` ends the job when its transport raised."""

    def step(self, now: float) -> float | None: ...

    def fail(self, exc: BaseException) -> None: ...


class _Job:
    __slots__ = ("cancelled", "done", "frames", "i", "on_token", "start", "transport")

    def __init__(
        self,
        transport: WritableTransport,
        frames: Sequence[Frame],
        i: int,
        start: float,
        on_token: TokenCallback | None,
        done: asyncio.Future[Handback],
    ) -> None:
        self.transport = transport
        self.frames = frames
        self.i = i
        self.start = start
        self.on_token = on_token
        self.done = done
        self.cancelled = False

    def step(self, now: float) -> float | None:
        """Write the frames due at `now`; return the next deadline, or None when the job leaves."""
        if self.cancelled or self.done.done():
            return None
        transport = self.transport
        if transport.is_closing():
            self.done.set_result(Handback(self.i, gone=True))
            return None
        frames = self.frames
        payload, i, slots = take_due(frames, self.i, now - self.start)
        transport.write(chunk(payload))
        self.i = i
        if slots and self.on_token is not None:
            for _ in range(slots):
                self.on_token(now)
        if i >= len(frames) or transport.get_write_buffer_size() > HIGH_WATER:
            self.done.set_result(Handback(i, gone=False))
            return None
        return self.start + frames[i][0]

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class Feed:
    """A stream whose frames arrive while it plays: `push(deadline, data)` queues a frame (deadlines
    must not decrease), the scheduler writes every due frame at its deadline (as HTTP/1.1 chunks when
    `chunked`, else raw); `on_write(now)` is called for each counted frame as it is written.

    The feeder checks `gone` (the client left: stop) and `backlogged` (a slow reader: wait for
    `drained()`, then continue with awaited writes), as `play`'s hand-back does.
    """

    __slots__ = ("_idle", "_queue", "_scheduled", "_scheduler", "chunked", "gone", "on_write", "transport")

    def __init__(
        self,
        scheduler: DeadlineScheduler,
        transport: WritableTransport,
        chunked: bool,
        on_write: TokenCallback | None,
    ) -> None:
        self._scheduler = scheduler
        self.transport = transport
        self.chunked = chunked
        self.on_write = on_write
        self.gone = False
        self._queue: collections.deque[tuple[float, bytes, bool]] = collections.deque()
        self._scheduled = False
        self._idle: asyncio.Future[None] | None = None

    @property
    def backlogged(self) -> bool:
        return self.transport.get_write_buffer_size() > HIGH_WATER

    def push(self, deadline: float, data: bytes, counted: bool = True) -> None:
        """Write `data` at `deadline` (loop time); `counted`: report it to `on_write`."""
        if self.gone:
            return
        self._queue.append((deadline, data, counted))
        if not self._scheduled:
            self._scheduled = True
            self._scheduler.push(deadline, self)

    async def drained(self) -> bool:
        """Wait until every pushed frame is written; False when the client left meanwhile."""
        if self._queue and not self.gone:
            if self._idle is None or self._idle.done():
                self._idle = self._scheduler.loop.create_future()
            await self._idle
        return not self.gone

    def step(self, now: float) -> float | None:
        queue = self._queue
        if self.transport.is_closing():
            self.gone = True
            queue.clear()
        batch: list[bytes] = []
        counted = 0
        while queue and queue[0][0] <= now:
            _, data, count = queue.popleft()
            batch.append(data)
            counted += count
        if batch:
            payload = batch[0] if len(batch) == 1 else b"".join(batch)
            self.transport.write(chunk(payload) if self.chunked else payload)
            if self.on_write is not None:
                for _ in range(counted):
                    self.on_write(now)
        if queue:
            return queue[0][0]
        self._scheduled = False
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
        return None

    def fail(self, exc: BaseException) -> None:
        self.gone = True
        self._queue.clear()
        self._scheduled = False
        if self._idle is not None and not self._idle.done():
            self._idle.set_exception(exc)


class DeadlineScheduler:
    """The per-loop heap of stream deadlines behind a single timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, _Steps]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._heap)

    async def play(
        self,
        transport: WritableTransport,
        frames: Sequence[Frame],
        i: int,
        start: float,
        on_token: TokenCallback | None,
    ) -> Handback:
        """Send `frames[i:]` at their deadlines (relative to `start`); return where and why it stopped."""
        done: asyncio.Future[Handback] = self.loop.create_future()
        job = _Job(transport, frames, i, start, on_token, done)
        self.push(start + frames[i][0], job)
        try:
            return await done
        finally:
            job.cancelled = True  # a cancelled request leaves the heap at its next deadline

    def feed(self, transport: WritableTransport, chunked: bool, on_write: TokenCallback | None) -> Feed:
        """A stream to push frames into as they arrive (see `Feed`)."""
        return Feed(self, transport, chunked, on_write)

    def push(self, deadline: float, job: _Steps) -> None:
        """Run `job.step` at `deadline` (and then at every deadline it returns)."""
        heapq.heappush(self._heap, (deadline, next(self._seq), job))
        if deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline, self._fire)
            self._timer_at = deadline

    def _fire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        heap = self._heap
        now = self.loop.time()
        due: list[_Steps] = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        for job in due:
            try:
                deadline = job.step(now)
            except Exception as exc:  # a broken transport must not stop the other streams
                job.fail(exc)
                continue
            if deadline is not None:
                heapq.heappush(heap, (deadline, next(self._seq), job))
        if heap:
            self._timer = self.loop.call_at(heap[0][0], self._fire)
            self._timer_at = heap[0][0]


_schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DeadlineScheduler] = (
    weakref.WeakKeyDictionary()
)


def for_loop(loop: asyncio.AbstractEventLoop) -> DeadlineScheduler:
    """The scheduler of `loop` (one per event loop)."""
    scheduler = _schedulers.get(loop)
    if scheduler is None:
        scheduler = _schedulers[loop] = DeadlineScheduler(loop)
    return scheduler
