"""A client that closes its connection right after the stream's last event got a whole answer:
`serve` records it as a success, not as cancelled."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest
from aiohttp import web

from llmsim.runtime.state import STATE
from llmsim.telemetry.records import RequestRecord
from simserver import FAST, SimServer

BODY = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()


def stream_and_close(server: SimServer, until: bytes) -> bytes:
    """POST a streamed chat completion on a raw socket, read until `until`, then close at once."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer k\r\nContent-Length: {len(BODY)}\r\n\r\n").encode()  # fmt: skip
        sock.sendall(head + BODY)
        seen = b""
        while until not in seen:
            data = sock.recv(65536)
            if not data:
                break
            seen += data
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return seen  # closed with RST (linger 0), the harshest way a client can leave


@pytest.mark.parametrize(("until", "outcome"), [(b"data: [DONE]", "ok"), (b'"content":"', "cancelled")])
def test_closing_after_the_last_event_is_a_success_and_before_it_a_cancel(
    sim_server_factory: Callable[..., SimServer], until: bytes, outcome: str
) -> None:
    slow = {**FAST, "latency": {**FAST["latency"], "itlMs": {"type": "constant", "value": 20}}}
    server = sim_server_factory(slow)
    records: list[RequestRecord] = []
    server.app[STATE].finished.append(records.append)
    for _ in range(5):  # the race between the close and the server's last write goes both ways
        assert until in stream_and_close(server, until)
    deadline = time.monotonic() + 5
    while len(records) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.outcome for r in records] == [outcome] * 5


def test_a_client_gone_between_the_last_event_and_the_end_of_the_body_got_a_whole_answer(
    sim_server_factory: Callable[..., SimServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client read `[DONE]` and closed before the chunked body's terminator went out (the
    window between the last frame and `write_eof`, where a busy loop serves other streams)."""
    server = sim_server_factory(FAST)
    records: list[RequestRecord] = []
    server.app[STATE].finished.append(records.append)
    original = web.StreamResponse.write_eof

    async def client_leaves_first(self: web.StreamResponse, data: bytes = b"") -> None:
        transport = self._req.transport if self._req is not None else None  # type: ignore[attr-defined]
        if transport is not None:
            transport.abort()
        await original(self, data)

    monkeypatch.setattr(web.StreamResponse, "write_eof", client_leaves_first)
    assert b"data: [DONE]" in stream_and_close(server, b"data: [DONE]")
    deadline = time.monotonic() + 5
    while not records and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.outcome for r in records] == ["ok"]
