"""Server-sent-event framing shared by the SSE providers."""

from __future__ import annotations

from typing import Any

from llmsim.providers.base import json_body

DONE = b"data: [DONE]\n\n"


def data(obj: Any) -> bytes:
    """`data: <json>\\n\\n` (OpenAI, Gemini)."""
    return b"data: " + json_body(obj) + b"\n\n"


def event(name: str, obj: Any) -> bytes:
    """`event: <name>\\ndata: <json>\\n\\n` (Anthropic, OpenAI Responses)."""
    return b"event: " + name.encode() + b"\ndata: " + json_body(obj) + b"\n\n"


STREAM_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
