"""Event boundaries in a forwarded byte stream (SSE events, NDJSON lines). Pure.

The relay delays and counts *events*, not TCP reads, so a perturbed stream never cuts an event in
half, and a measured one counts what the client's SDK sees.
"""

from __future__ import annotations

import json
from typing import Any

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


_FAST_TEXT = (b'"delta":{"content":"', b'"parts":[{"text":"', b'"message":{"role":"assistant","content":"')
"""How OpenAI, Gemini and Ollama (compact JSON, as they send it) open a non-empty text piece: a
byte check that spares the JSON parse for the bulk of a stream's events."""


def content_event(event: bytes, ndjson: bool) -> bool:
    """Whether a whole event (as FrameSplitter yields it) carries output, per provider format:
    OpenAI chat/completions chunks with text, refusal or tool-call arguments (not the role-only
    opening, the finish or usage chunks, `[DONE]`); Responses `response.*.delta` events; Anthropic
    `content_block_delta` (not ping, message_start/delta/stop, content_block_start/stop); Gemini
    chunks with a non-empty text or function-call part; Ollama lines with message content, tool
    calls or generated text. Errors and anything unparsable carry none."""
    if ndjson:
        payload = event.strip()
    else:
        if event.startswith(b"event:"):  # Anthropic and Responses name their events
            name = event[6 : event.find(b"\n") if b"\n" in event else None].strip()
            return name == b"content_block_delta" or (
                name.startswith(b"response.") and name.endswith(b".delta")
            )
        lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        payload = b"\n".join(lines).strip()
    if not payload or payload == b"[DONE]":
        return False
    for marker in _FAST_TEXT:
        at = payload.find(marker)
        if at >= 0 and payload[at + len(marker) : at + len(marker) + 1] not in (b'"', b""):
            return True
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and _carries_output(doc)


def _carries_output(doc: dict[str, Any]) -> bool:
    if "error" in doc:
        return False
    kind = doc.get("type")
    if isinstance(kind, str):  # Anthropic and Responses events name themselves
        return kind == "content_block_delta" or (kind.startswith("response.") and kind.endswith(".delta"))
    if isinstance(doc.get("choices"), list):
        return any(_choice_has_output(c) for c in doc["choices"] if isinstance(c, dict))
    if isinstance(doc.get("candidates"), list):
        return any(_candidate_has_output(c) for c in doc["candidates"] if isinstance(c, dict))
    message = doc.get("message")
    if isinstance(message, dict):
        return bool(message.get("content") or message.get("tool_calls") or message.get("thinking"))
    return bool(doc.get("response"))


def _choice_has_output(choice: dict[str, Any]) -> bool:
    if choice.get("text"):
        return True  # legacy completions
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return False
    if delta.get("content") or delta.get("refusal"):
        return True
    calls = delta.get("tool_calls")
    return isinstance(calls, list) and any(
        isinstance(c, dict) and isinstance(c.get("function"), dict) and c["function"].get("arguments")
        for c in calls
    )


def _candidate_has_output(candidate: dict[str, Any]) -> bool:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return isinstance(parts, list) and any(
        isinstance(p, dict) and (p.get("text") or p.get("functionCall")) for p in parts
    )


class ContentCounter:
    """Counts the output-carrying events (`content_event`) completed by each read of a stream."""

    def __init__(self, ndjson: bool) -> None:
        self.ndjson = ndjson
        self._splitter = FrameSplitter(ndjson)

    def feed(self, data: bytes) -> int:
        return sum(content_event(e, self.ndjson) for e in self._splitter.feed(data))
