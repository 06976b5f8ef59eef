"""Event boundaries in a forwarded byte stream (SSE events, NDJSON lines). Pure.

The relay delays and counts *events*, not TCP reads, so a perturbed stream never cuts an event in
half, and a measured one counts what the client's SDK sees.
"""

from __future__ import annotations

STREAM_TYPES = ("text/event-stream", "application/x-ndjson", "application/jsonl", "application/stream+json")
"""Content types whose bodies are streams of events."""


def is_ndjson(content_type: str) -> bool:
    return "ndjson" in content_type or "jsonl" in content_type or "stream+json" in content_type


class FrameSplitter:
    """Splits a byte stream into whole SSE events (blank-line separated) or NDJSON lines.

    Perturbation delays and counts *events*, not TCP reads, so a chunk is never cut in half.
    """

    def __init__(self, ndjson: bool) -> None:
        self._sep = b"\n" if ndjson else b"\n\n"
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data.replace(b"\r\n", b"\n") if b"\r" in data else data
        out: list[bytes] = []
        while True:
            i = self._buf.find(self._sep)
            if i < 0:
                return out
            end = i + len(self._sep)
            out.append(self._buf[:end])
            self._buf = self._buf[end:]

    def flush(self) -> bytes:
        rest, self._buf = self._buf, b""
        return rest


class EventCounter:
    """Counts events completed by each read without copying the stream (passthrough measurement):
    a C-level `bytes.count` per read, with the last byte carried over so a separator split across
    two reads is still seen. `\r\n\r\n`-separated SSE is counted by its `\n\r\n` tail."""

    def __init__(self, ndjson: bool) -> None:
        self._sep = b"\n" if ndjson else b"\n\n"
        self._crlf = b"\n\r\n"
        self._tail = b""

    def feed(self, data: bytes) -> int:
        if not data:
            return 0
        joined = self._tail + data
        if len(self._sep) == 1:
            count = data.count(self._sep)
        else:
            count = joined.count(self._sep) + joined.count(self._crlf)
            count -= self._tail.count(self._sep) + self._tail.count(self._crlf)
        self._tail = joined[-2:]
        return count
