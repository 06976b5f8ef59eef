"""Concurrency slots and the FIFO queue of the capacity model (the I/O half of simulation.capacity)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from llmsim.api.profile import Capacity


class QueueFull(Exception):
    """The capacity model's queue is full: the request is rejected as overloaded."""


class CapacityGate:
    """`max_concurrency` slots; further requests wait FIFO (at most `max_queue` of them)."""

    def __init__(self, capacity: Capacity | None) -> None:
        self.capacity = capacity
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[tuple[int, float]]:
        """Hold a slot; yields (active streams including this one, seconds spent queueing)."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        cap = self.capacity
        if cap is not None and self.active >= cap.max_concurrency:
            if cap.max_queue is not None and len(self._waiters) >= cap.max_queue:
                raise QueueFull()
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif fut.done() and not fut.cancelled():
                    self._release()  # we were handed a slot but won't use it
                raise
        else:
            self.active += 1
        try:
            yield self.active, loop.time() - t0
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the next waiter
                return
        self.active -= 1
