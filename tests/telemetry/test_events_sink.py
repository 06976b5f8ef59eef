"""Events: CloudEvents envelopes, JSON log lines, the bounded sink, and requests unaffected by a bad sink."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web
from helpers import receiver, scrape, total

from llmsim.profiles import ProfileRegistry
from llmsim.server.app import create_app
from llmsim.telemetry import events
from simserver import SimServer, profile_from

QUICK: dict[str, Any] = {
    "seed": 1,
    "latency": {
        "ttftMs": {"type": "constant", "value": 20},
        "itlMs": {"type": "constant", "value": 2},
        "outputTokens": {"type": "constant", "value": 3},
    },
}
USER = [{"role": "user", "content": "hi"}]


class Inbox:
    def __init__(self, status: int = 200, delay_s: float = 0.0) -> None:
        self.status, self.delay_s = status, delay_s
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.posts.append((request.headers.get("Content-Type", ""), json.loads(body)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.status)

    def types(self) -> list[str]:
        with self.lock:
            return [doc["type"] for _, doc in self.posts]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cloudevent_envelope_and_log_line() -> None:
    env = events.cloudevent(
        "request.completed", {"outcome": "ok"}, source="/llmsim/test", subject="r1", time_s=0
    )
    assert env == {
        "specversion": "1.0",
        "id": env["id"],
        "source": "/llmsim/test",
        "type": "io.llmsim.request.completed",
        "time": "1970-01-01T00:00:00.000Z",
        "datacontenttype": "application/json",
        "subject": "r1",
        "data": {"outcome": "ok"},
    }
    other = events.cloudevent("request.completed", {}, source="/x")
    assert other["id"] != env["id"] and "subject" not in other
    line = json.loads(events.log_line(env))
    assert line == {
        "event": "request.completed",
        "time": env["time"],
        "id": env["id"],
        "subject": "r1",
        "outcome": "ok",
    }


def test_event_bus_logs_json_lines(caplog: pytest.LogCaptureFixture) -> None:
    bus = events.EventBus("/t")
    caplog.set_level(logging.INFO, logger="llmsim.events")
    bus.emit("session.started", {"sessionId": "s1"}, subject="s1")
    bus.emit("request.completed", {"outcome": "ok"})  # per-request events are DEBUG
    bus.emit("error.occurred", {"outcome": "rate_limit"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "llmsim.events"]
    assert [line["event"] for line in lines] == ["session.started"] and lines[0]["sessionId"] == "s1"
    caplog.set_level(logging.DEBUG, logger="llmsim.events")
    bus.emit("error.occurred", {"outcome": "rate_limit"})
    assert json.loads(caplog.records[-1].getMessage())["outcome"] == "rate_limit"


async def test_failed_deliveries_are_retried_a_bounded_number_of_times() -> None:
    inbox = Inbox(status=503)
    server = receiver(inbox.handle)
    try:
        dropped: list[str] = []
        sink = events.CloudEventSink(
            server.url + "/ce", max_attempts=3, backoff_s=0.01, on_drop=dropped.append
        )
        await sink.start()
        assert sink.offer(events.cloudevent("error.occurred", {}, source="/t"))
        await sink.aclose(drain_timeout_s=5)
        assert len(inbox.posts) == 3 and dropped == ["failed"] and sink.sent == 0

        inbox.status = 400  # a refusal is final: no retry
        sink = events.CloudEventSink(server.url + "/ce", max_attempts=3, backoff_s=0.01)
        await sink.start()
        sink.offer(events.cloudevent("error.occurred", {}, source="/t"))
        await sink.aclose(drain_timeout_s=5)
        assert len(inbox.posts) == 4 and sink.dropped == {"failed": 1}
    finally:
        server.stop()


async def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    sink = events.CloudEventSink(f"http://127.0.0.1:{free_port()}/", queue_size=2)
    offered = [sink.offer(events.cloudevent("request.completed", {}, source="/t")) for _ in range(5)]
    assert offered == [True, True, False, False, False]
    assert sink.dropped == {"queue_full": 3}
    await sink.aclose(drain_timeout_s=0)
    assert sink.dropped == {"queue_full": 3, "closed": 2}


def test_events_reach_the_sink_as_structured_cloudevents(
    monkeypatch: pytest.MonkeyPatch, sim_server_factory: Callable[..., SimServer]
) -> None:
    inbox = Inbox()
    sink = receiver(inbox.handle)
    monkeypatch.setenv("LLMSIM_EVENTS_SINK_URL", sink.url + "/events")
    monkeypatch.setenv("LLMSIM_EVENTS_SOURCE", "/llmsim/test")
    try:
        server = sim_server_factory(QUICK)
        sid = httpx.post(server.url + "/v1/sessions", json={}, timeout=10).json()["sessionId"]
        c = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        c.chat.completions.create(model="m", messages=USER, extra_headers={"x-llmsim-session": sid})
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(
                model="m", messages=USER, extra_headers={"x-llmsim-fault": "overloaded"}
            )
        httpx.delete(f"{server.url}/v1/sessions/{sid}", timeout=10)
        deadline = time.monotonic() + 5
        while len(inbox.types()) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        types = inbox.types()
        assert sorted(types) == sorted(
            [
                "io.llmsim.session.started",
                "io.llmsim.request.completed",
                "io.llmsim.request.completed",
                "io.llmsim.error.occurred",
                "io.llmsim.session.completed",
            ]
        )
        assert {ct for ct, _ in inbox.posts} == {events.CE_CONTENT_TYPE}
        error = next(doc for _, doc in inbox.posts if doc["type"] == "io.llmsim.error.occurred")
        assert error["source"] == "/llmsim/test" and error["specversion"] == "1.0"
        assert error["data"]["errorType"] == "overloaded" and error["data"]["injected"] is True
        assert total(scrape(server), "llmsim_events_sent_total") == 5
    finally:
        sink.stop()


@pytest.mark.slow
def test_a_down_or_slow_sink_leaves_request_latency_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three servers side by side: no sink, a sink that refuses connections, a sink that answers after
    2 s. Requests go to them in turn (so machine load hits all three alike); the median client latency
    with a bad sink stays within 5 ms of the median without one (answers take ~25 ms), and the events
    that could not be delivered are counted as dropped."""
    n = 40
    slow_inbox = Inbox(delay_s=2.0)
    slow = receiver(slow_inbox.handle)
    monkeypatch.setenv("LLMSIM_EVENTS_QUEUE_SIZE", "4")
    monkeypatch.setenv("LLMSIM_EVENTS_TIMEOUT_S", "0.3")
    monkeypatch.setenv("LLMSIM_EVENTS_BACKOFF_S", "0.05")
    servers: dict[str, SimServer] = {}
    try:
        for name, url in (
            ("none", None),
            ("down", f"http://127.0.0.1:{free_port()}/"),
            ("slow", slow.url + "/"),
        ):
            if url is None:
                monkeypatch.delenv("LLMSIM_EVENTS_SINK_URL", raising=False)
            else:
                monkeypatch.setenv("LLMSIM_EVENTS_SINK_URL", url)
            servers[name] = SimServer(create_app(ProfileRegistry(profile_from(QUICK)))).start()
        clients = {
            name: openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
            for name, server in servers.items()
        }
        latencies: dict[str, list[float]] = {name: [] for name in servers}
        for round_ in range(n + 1):
            for name, c in clients.items():
                t0 = time.perf_counter()
                c.chat.completions.create(model="m", messages=USER)
                if round_:  # round 0 warms the connections up
                    latencies[name].append(time.perf_counter() - t0)
        dropped = {
            name: total(scrape(server), "llmsim_events_dropped_total") for name, server in servers.items()
        }
    finally:
        for server in servers.values():
            server.stop()
        slow.stop()
    medians = {name: statistics.median(values) for name, values in latencies.items()}
    assert abs(medians["down"] - medians["none"]) < 0.005, medians
    assert abs(medians["slow"] - medians["none"]) < 0.005, medians
    assert dropped["none"] == 0
    # 41 request.completed events, at most 4 queued + 2 in flight: most are dropped and counted.
    assert dropped["down"] >= 20 and dropped["slow"] >= 20, dropped
