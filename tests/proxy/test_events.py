"""Event boundaries in forwarded streams: whole SSE events and NDJSON lines, however reads are cut."""

from __future__ import annotations

import pytest

from llmsim.proxy.events import EventCounter, FrameSplitter, is_ndjson


def test_splitter_yields_whole_events_only() -> None:
    sse = FrameSplitter(ndjson=False)
    assert sse.feed(b"data: 1\n\nda") == [b"data: 1\n\n"]
    assert sse.feed(b"ta: 2\r\n\r\nevent: x\n") == [b"data: 2\n\n"]
    assert sse.flush() == b"event: x\n"
    nd = FrameSplitter(ndjson=True)
    assert nd.feed(b'{"a":1}\n{"b"') == [b'{"a":1}\n']
    assert nd.feed(b":2}\n") == [b'{"b":2}\n']


@pytest.mark.parametrize("cut", range(1, 30))
def test_event_counter_agrees_with_the_splitter_wherever_reads_are_cut(cut: int) -> None:
    stream = b"data: 1\n\ndata: 2\r\n\r\nevent: x\ndata: 3\n\n\ndata: 4\n\n"
    counter, splitter = EventCounter(ndjson=False), FrameSplitter(ndjson=False)
    counted = counter.feed(stream[:cut]) + counter.feed(stream[cut:])
    assert counted == len(splitter.feed(stream)) == 4
    nd = EventCounter(ndjson=True)
    assert nd.feed(b'{"a":1}\n{"b"') + nd.feed(b":2}\n") == 2


@pytest.mark.parametrize(
    ("content_type", "ndjson"),
    [("application/x-ndjson", True), ("application/jsonl", True), ("text/event-stream", False)],
)
def test_line_delimited_types_are_split_by_lines(content_type: str, ndjson: bool) -> None:
    assert is_ndjson(content_type) is ndjson
