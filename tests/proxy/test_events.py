"""Event boundaries in forwarded streams (whole SSE events and NDJSON lines, however reads are
cut), and which events carry output, per provider format, as the simulator renders them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from llmsim.api.profile import SimulationProfileSpec
from llmsim.providers.base import HttpRequestFacts, StreamAnswer
from llmsim.proxy.events import ContentCounter, FrameSplitter, content_event, is_ndjson
from llmsim.server import routes
from llmsim.simulation import planner


def test_splitter_yields_whole_events_only() -> None:
    sse = FrameSplitter(ndjson=False)
    assert sse.feed(b"data: 1\n\nda") == [b"data: 1\n\n"]
    assert sse.feed(b"ta: 2\r\n\r\nevent: x\n") == [b"data: 2\n\n"]
    assert sse.flush() == b"event: x\n"
    nd = FrameSplitter(ndjson=True)
    assert nd.feed(b'{"a":1}\n{"b"') == [b'{"a":1}\n']
    assert nd.feed(b":2}\n") == [b'{"b":2}\n']


@pytest.mark.parametrize("cut", range(1, 60, 3))
def test_the_counter_counts_content_events_wherever_reads_are_cut(cut: int) -> None:
    role = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    text = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\r\n\r\n'
    finish = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    stream = role + text + text + finish + b"data: [DONE]\n\n"
    counter = ContentCounter(ndjson=False)
    assert counter.feed(stream[:cut]) + counter.feed(stream[cut:]) == 2


@pytest.mark.parametrize(
    ("content_type", "ndjson"),
    [("application/x-ndjson", True), ("application/jsonl", True), ("text/event-stream", False)],
)
def test_line_delimited_types_are_split_by_lines(content_type: str, ndjson: bool) -> None:
    assert is_ndjson(content_type) is ndjson


BODIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "chat": ("POST", "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                              "stream": True, "stream_options": {"include_usage": True}}),
    "completions": ("POST", "/v1/completions", {"model": "m", "prompt": "hi", "stream": True}),
    "responses": ("POST", "/v1/responses", {"model": "m", "input": "hi", "stream": True}),
    "anthropic": ("POST", "/v1/messages", {"model": "c", "max_tokens": 100, "stream": True,
                                           "messages": [{"role": "user", "content": "hi"}]}),
    "gemini": ("POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
               {"contents": [{"parts": [{"text": "hi"}]}]}),
    "ollama": ("POST", "/api/chat", {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}),
    "ollama-generate": ("POST", "/api/generate", {"model": "llama3", "prompt": "hi"}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BODIES))
def test_each_formats_stream_has_one_content_event_per_token_slot(name: str) -> None:
    method, path, body = BODIES[name]
    route = next(r for r in routes.all_routes() if r.method == method and _matches(r.path, path))
    query = {"alt": "sse"} if name == "gemini" else {}
    info = _route_params(route.path, path)
    facts = HttpRequestFacts(
        method, path, info, query, {"authorization": "Bearer k"}, json.dumps(body).encode(), "r1"
    )
    gen = route.endpoint.parse(facts)
    spec = SimulationProfileSpec.model_validate({  # one token per Gemini chunk: then chunks are tokens
        "latency": {"outputTokens": {"type": "constant", "value": 9}},
        "streaming": {"geminiChunkTokens": {"type": "constant", "value": 1}}})  # fmt: skip
    plan = planner.plan_response(spec, gen, np.random.default_rng(1), response_id="x", created=0)
    answer = route.endpoint.render(plan, gen, facts)
    assert isinstance(answer, StreamAnswer)
    ndjson = name.startswith("ollama")
    stream = b"".join(f.data for f in answer.frames)
    events = FrameSplitter(ndjson).feed(stream)
    if name != "gemini":  # (the simulator's Gemini stream has none: its last chunk carries the last token)
        assert len(events) > plan.completion_tokens  # there are non-content events to leave out
    assert sum(content_event(e, ndjson) for e in events) == plan.completion_tokens == 9


def _matches(pattern: str, path: str) -> bool:
    return _route_params(pattern, path) is not None or pattern == path


def _route_params(pattern: str, path: str) -> dict[str, str] | None:
    import re

    regex = re.sub(r"\{(\w+)(?::([^}]+))?\}", lambda m: f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})", pattern)
    found = re.fullmatch(regex, path)
    return None if found is None else found.groupdict()


def test_gemini_chunks_with_only_empty_parts_and_error_lines_carry_no_output() -> None:
    empty = (
        b'data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP"}]}\n\n'
    )
    assert not content_event(empty, ndjson=False)
    assert not content_event(
        b'data: {"error":{"code":503,"message":"x","status":"UNAVAILABLE"}}\n\n', ndjson=False
    )
    assert not content_event(b'{"error":"boom"}\n', ndjson=True)
    assert not content_event(b'data: {"choices":[{"index":0,"del\n\n', ndjson=False)  # malformed
    call = b'data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]}}]}\n\n'
    assert content_event(call, ndjson=False)


def test_comments_ids_and_escaped_text_are_read_like_the_sdks_read_them() -> None:
    assert not content_event(b": keep-alive\n\n", ndjson=False)
    assert content_event(b': ping\ndata: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n', ndjson=False)
    assert content_event(
        b'id: 7\nevent: content_block_delta\ndata: {"type":"content_block_delta"}\n\n', ndjson=False
    )
    assert not content_event(b'id: 7\nevent: ping\ndata: {"type":"ping"}\n\n', ndjson=False)
    assert content_event(b'data: {"choices":[{"index":0,"delta":{"content":"\\"q"}}]}\n\n', ndjson=False)
    assert not content_event(b'data: {"choices":[{"index":0,"delta":{"content":""}}]}\n\n', ndjson=False)
    assert content_event(
        b'data: {"choices":[{"delta":{"content": "spaced"}}]}\n\n', ndjson=False
    )  # not compact
