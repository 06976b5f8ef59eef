"""The Anthropic Messages SSE stream: named events, each `event: <type>` matching `data.type`.

Order (as documented and as `anthropic.lib.streaming` accumulates it): `message_start`,
`content_block_start` (index 0), `ping`, `content_block_delta` per token (`text_delta`, or
`input_json_delta` fragments for `tool_use` blocks), `content_block_stop` per block,
`message_delta` (stop_reason, stop_sequence, cumulative usage), `message_stop`. No `[DONE]`.
"""

from __future__ import annotations

from typing import Any

from llmsim.providers import sse
from llmsim.providers.base import TRAILER, Frame
from llmsim.simulation.plan import ResponsePlan

STREAM_HEADERS = sse.STREAM_HEADERS

MALFORMED = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_de\n\n'
)
"""A broken frame: an event whose JSON is cut off (for client hardening tests)."""


def _event(obj: dict[str, Any]) -> bytes:
    return sse.event(str(obj["type"]), obj)


def error_event(error: dict[str, Any]) -> bytes:
    """`event: error` with `{"type":"error","error":{...}}`."""
    return _event({"type": "error", "error": error})


def frames(plan: ResponsePlan, message: dict[str, Any]) -> list[Frame]:
    """Frames streaming `message` (the non-streamed body of the plan's first choice), each due at
    its token's deadline. `message_start` announces it with empty content and one output token."""
    choice = plan.choices[0]
    offsets = plan.timing.token_offsets_s
    first = offsets[0] if offsets else plan.timing.ttft_s
    end = plan.timing.e2e_s
    final_usage = dict(message["usage"])
    start_message = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**final_usage, "output_tokens": 1},
    }
    out = [Frame(first, _event({"type": "message_start", "message": start_message}))]

    blocks: list[dict[str, Any]] = message["content"]
    token = 0
    for index, block in enumerate(blocks):
        at = offsets[token] if token < len(offsets) and index else first
        if index:
            out.append(Frame(at, _event({"type": "content_block_stop", "index": index - 1}), token=token))
        if block["type"] == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in choice.pieces]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            call = choice.tool_calls[index - (len(blocks) - len(choice.tool_calls))]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in call.argument_pieces]
        start_token = token if index else -1
        out.append(
            Frame(
                at,
                _event({"type": "content_block_start", "index": index, "content_block": start}),
                start_token,
            )
        )
        if not index:
            out.append(Frame(first, _event({"type": "ping"})))
        for delta in deltas:
            out.append(
                Frame(
                    offsets[token],
                    _event({"type": "content_block_delta", "index": index, "delta": delta}),
                    token,
                )
            )
            token += 1

    out.append(Frame(end, _event({"type": "content_block_stop", "index": len(blocks) - 1}), TRAILER))
    usage = {k: v for k, v in final_usage.items() if k != "service_tier"}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    out.append(Frame(end, _event({"type": "message_delta", "delta": delta, "usage": usage}), TRAILER))
    out.append(Frame(end, _event({"type": "message_stop"}), TRAILER))
    return out
