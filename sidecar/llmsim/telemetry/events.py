"""Events: structured JSON log lines and, with a sink URL, CloudEvents POSTed over HTTP.

Event types: `session.started`, `session.completed`, `request.completed`, `error.occurred`,
`anomaly.detected`, `control.action` (the proxy's audit trail: pause, resume, reset, fail-safe,
expiry, fault windows opening and closing). Each is written as one JSON line on the `llmsim.events` logger
(the per-request `request.completed` and `error.occurred` at
DEBUG, the others at INFO). With a sink configured, each is also sent as a
CloudEvent in structured JSON mode (`Content-Type: application/cloudevents+json`), type
`io.llmsim.<event>` (e.g. `io.llmsim.session.started`).

Delivery never blocks or fails a request: events go into a bounded queue; when it is full the
event is dropped and counted. Workers POST with a per-attempt timeout and a bounded number of
attempts with exponential backoff; events that still fail are dropped and counted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Literal

import aiohttp

log = logging.getLogger("llmsim.events")

EventType = Literal[
    "session.started", "session.completed", "request.completed", "error.occurred", "anomaly.detected",
    "control.action",
]  # fmt: skip
EVENT_TYPES: tuple[EventType, ...] = (
    "session.started",
    "session.completed",
    "request.completed",
    "error.occurred",
    "anomaly.detected",
    "control.action",
)
CE_TYPE_PREFIX = "io.llmsim."
CE_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_QUIET: frozenset[str] = frozenset({"request.completed", "error.occurred"})
"""Per-request events: logged at DEBUG (at thousands of requests per second INFO would flood logs)."""


def rfc3339(unix_s: float) -> str:
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cloudevent(
    event_type: EventType,
    data: Mapping[str, Any],
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time_s: float | None = None,
) -> dict[str, Any]:
    """A CloudEvents 1.0 envelope (structured JSON mode) for one event. Pure but for id/time defaults."""
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or uuid.uuid4().hex,
        "source": source,
        "type": CE_TYPE_PREFIX + event_type,
        "time": rfc3339(time.time() if time_s is None else time_s),
        "datacontenttype": "application/json",
    }
    if subject:
        envelope["subject"] = subject
    envelope["data"] = dict(data)
    return envelope


def log_line(envelope: Mapping[str, Any]) -> str:
    """The JSON log line of an event: `event`, `time`, `id`, `subject`, then the data fields."""
    line: dict[str, Any] = {
        "event": str(envelope["type"]).removeprefix(CE_TYPE_PREFIX),
        "time": envelope["time"],
        "id": envelope["id"],
    }
    if "subject" in envelope:
        line["subject"] = envelope["subject"]
    line.update(envelope["data"])
    return json.dumps(line, separators=(",", ":"), default=str)


class CloudEventSink:
    """Delivers envelopes to `url` from a bounded queue with a few worker tasks.

    `offer()` never blocks (call it from the event loop's thread). `dropped` counts events by
    reason: `queue_full`, `failed` (all attempts failed), `closed` (still queued at shutdown).
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 1000,
        max_attempts: int = 3,
        timeout_s: float = 2.0,
        backoff_s: float = 0.2,
        concurrency: int = 2,
        headers: Mapping[str, str] | None = None,
        on_drop: Callable[[str], None] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        if queue_size < 1 or max_attempts < 1 or concurrency < 1 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError(
                "events sink: queue_size, max_attempts, concurrency >= 1; timeout_s > 0; backoff_s >= 0"
            )
        self.url = url
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self.headers = {"content-type": CE_CONTENT_TYPE, **(headers or {})}
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self.dropped: Counter[str] = Counter()
        self.sent = 0
        self._on_drop = on_drop
        self._on_sent = on_sent
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def offer(self, envelope: dict[str, Any]) -> bool:
        """Queue an envelope; False (and counted) when the queue is full or the sink closed."""
        if self._closed:
            self._drop("closed")
            return False
        try:
            self.queue.put_nowait(envelope)
        except asyncio.QueueFull:
            self._drop("queue_full")
            return False
        return True

    def _drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n
        if self._on_drop is not None:
            for _ in range(n):
                self._on_drop(reason)

    async def start(self) -> None:
        if self._workers:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._workers = [
            asyncio.create_task(self._work(), name=f"llmsim-events-{i}") for i in range(self.concurrency)
        ]

    async def aclose(self, drain_timeout_s: float = 2.0) -> None:
        """Give queued events up to `drain_timeout_s` to go out, then stop; leftovers count as `closed`."""
        if self._workers and drain_timeout_s > 0:
            try:
                await asyncio.wait_for(self.queue.join(), drain_timeout_s)
            except TimeoutError:
                pass
        self._closed = True
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._workers = []
        leftover = self.queue.qsize()
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
        if leftover:
            self._drop("closed", leftover)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        while True:
            envelope = await self.queue.get()
            try:
                if await self._deliver(envelope):
                    self.sent += 1
                    if self._on_sent is not None:
                        self._on_sent()
                else:
                    self._drop("failed")
            except Exception:  # a worker must survive anything
                log.debug("events sink worker error", exc_info=True)
                self._drop("failed")
            finally:
                self.queue.task_done()

    async def _deliver(self, envelope: dict[str, Any]) -> bool:
        assert self._session is not None
        body = json.dumps(envelope, separators=(",", ":"), default=str).encode()
        for attempt in range(self.max_attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                async with self._session.post(self.url, data=body, headers=self.headers) as response:
                    await response.read()
                    if response.status < 300:
                        return True
                    if response.status < 500 and response.status not in (408, 429):
                        log.debug("events sink refused an event: HTTP %d", response.status)
                        return False
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.debug("events sink attempt %d failed: %r", attempt + 1, exc)
        return False


class EventBus:
    """Emits events as JSON log lines and, when a sink is set, as CloudEvents. Never raises."""

    def __init__(
        self,
        source: str = "/llmsim",
        sink: CloudEventSink | None = None,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.sink = sink
        self.logger = logger
        self.clock = clock
        self.emitted: Counter[str] = Counter()

    def emit(self, event_type: EventType, data: Mapping[str, Any], subject: str | None = None) -> None:
        try:
            level = logging.DEBUG if event_type in _QUIET else logging.INFO
            wanted_by_log = self.logger.isEnabledFor(level)
            if not wanted_by_log and self.sink is None:
                return
            envelope = cloudevent(event_type, data, source=self.source, subject=subject, time_s=self.clock())
            self.emitted[event_type] += 1
            if wanted_by_log:
                self.logger.log(level, "%s", log_line(envelope))
            if self.sink is not None:
                self.sink.offer(envelope)
        except Exception:
            log.debug("event %s could not be emitted", event_type, exc_info=True)

    async def start(self) -> None:
        if self.sink is not None:
            await self.sink.start()

    async def aclose(self) -> None:
        if self.sink is not None:
            await self.sink.aclose()
