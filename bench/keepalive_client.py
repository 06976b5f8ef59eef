"""A lean keep-alive load client: C connections, each sending requests back to back for D seconds.

Raw HTTP/1.1 over asyncio protocols (uvloop when installed), so that one client core outruns the
server under test; it parses Content-Length and chunked responses and counts the output tokens
(`"content":"…"` with a non-empty value) in every response body.

    python -m bench.keepalive_client --url http://127.0.0.1:8080 --connections 32 --seconds 3 [--stream]

Prints one JSON object: responses, errors, tokens, wall seconds, client CPU seconds, latencies (s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

from bench.stream_client import raise_fd_limit


def request_bytes(host: str, port: int, path: str, stream: bool, max_tokens: int, model: str) -> bytes:
    body = json.dumps({"model": model, "stream": stream, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "benchmark"}]}).encode()  # fmt: skip
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer bench\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


def tokens_in(body: bytes | bytearray) -> int:
    return body.count(b'"content":"') - body.count(b'"content":""')


class Connection(asyncio.Protocol):
    """Sends `payload`, reads the whole response, repeats until `until` (loop time)."""

    def __init__(
        self, payload: bytes, until: float, stats: dict[str, object], done: asyncio.Future[None]
    ) -> None:
        self.payload, self.until, self.stats, self.done = payload, until, stats, done
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self._complete()
        if end is None:
            return
        body, rest = end
        stats = self.stats
        status_ok = self.buf.startswith(b"HTTP/1.1 200")
        stats["responses"] = int(stats["responses"]) + 1  # type: ignore[call-overload]
        if not status_ok:
            stats["errors"] = int(stats["errors"]) + 1  # type: ignore[call-overload]
        stats["tokens"] = int(stats["tokens"]) + tokens_in(body)  # type: ignore[call-overload]
        stats["latencies"].append(time.perf_counter() - self.sent)  # type: ignore[attr-defined]
        self.buf = bytearray(rest)
        if asyncio.get_running_loop().time() < self.until:
            self._send()
        else:
            assert self.transport is not None
            self.transport.close()

    def _complete(self) -> tuple[bytes, bytes] | None:
        """(body, leftover) once the response in `buf` is complete."""
        buf = self.buf
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(buf[:head_end]).lower()
        start = head_end + 4
        marker = head.find(b"content-length:")
        if marker >= 0:
            length = int(
                head[marker + 15 : head.find(b"\r\n", marker) if head.find(b"\r\n", marker) > 0 else None]
            )
            if len(buf) < start + length:
                return None
            return bytes(buf[start : start + length]), bytes(buf[start + length :])
        if b"transfer-encoding: chunked" not in head:
            raise RuntimeError(f"response neither sized nor chunked: {head[:200]!r}")
        if buf.find(b"\r\n0\r\n\r\n", start - 2) < 0:
            return None
        body = bytearray()
        pos = start
        while True:
            line_end = buf.index(b"\r\n", pos)
            size = int(buf[pos:line_end].split(b";")[0], 16)
            if size == 0:
                return bytes(body), bytes(buf[line_end + 4 :])
            body += buf[line_end + 2 : line_end + 2 + size]
            pos = line_end + 2 + size + 2

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run(
    url: str, connections: int, seconds: float, stream: bool, max_tokens: int, model: str
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = request_bytes(host, port, parts.path or "/v1/chat/completions", stream, max_tokens, model)
    loop = asyncio.get_running_loop()
    stats: dict[str, object] = {"responses": 0, "errors": 0, "tokens": 0, "latencies": []}
    cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    until = loop.time() + seconds
    waits = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done: Connection(payload, until, stats, d), host, port)
        waits.append(done)
    await asyncio.wait_for(asyncio.gather(*waits), seconds + 30)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    stats["seconds"] = time.perf_counter() - t0
    stats["client_cpu_s"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="full URL including the path")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--model", default="bench")
    args = parser.parse_args()
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        run(args.url, args.connections, args.seconds, args.stream, args.max_tokens, args.model)
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
