"""The streamed Responses API: named SSE events with increasing `sequence_number`s.

`response.created`, `response.in_progress`; then per output item, one after the other as the
real API sends them: `response.output_item.added`, its content (`content_part.added`,
`output_text.delta` per token, `output_text.done`, `content_part.done` for a message;
`function_call_arguments.delta` per token and `function_call_arguments.done` for a call) and
`response.output_item.done`; last `response.completed`, or `response.incomplete` (with
`incomplete_details.reason: max_output_tokens`) when `max_output_tokens` cut the answer.
"""

from __future__ import annotations

import itertools
from typing import Any

from llmsim.providers import openai_responses_body as body
from llmsim.providers import sse
from llmsim.providers.base import TRAILER, Frame
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest


def frames(plan: ResponsePlan, request: GenerationRequest) -> list[Frame]:
    """The event frames, each due at the deadline of the token it carries."""
    seq = itertools.count()
    out: list[Frame] = []
    offsets = plan.timing.token_offsets_s
    first = offsets[0] if offsets else plan.timing.ttft_s
    end = plan.timing.e2e_s

    def emit(at: float, kind: str, payload: dict[str, Any], token: int = -1) -> None:
        out.append(Frame(at, sse.event(kind, {"type": kind, "sequence_number": next(seq), **payload}), token))

    in_progress = body.response_object(plan, request, "in_progress", [])
    emit(first, "response.created", {"response": in_progress})
    emit(first, "response.in_progress", {"response": in_progress})
    choice = plan.choices[0]
    added = body.output_items(plan, done=False)
    finished = body.output_items(plan, done=True)
    index = 0
    token = 0
    if choice.pieces or not choice.tool_calls:
        item_id = body.message_id(plan)
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        refusal = body.is_refusal(plan)
        part: dict[str, Any] = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        if refusal:
            part = {"type": "refusal", "refusal": ""}
        emit(first, "response.output_item.added", {"output_index": 0, "item": added[0]})
        emit(first, "response.content_part.added", {**where, "part": part})
        for piece in choice.pieces:
            if refusal:
                emit(offsets[token], "response.refusal.delta", {**where, "delta": piece}, token)
            else:
                lp = body.logprobs(plan, token, token + 1, delta=True)
                emit(
                    offsets[token],
                    "response.output_text.delta",
                    {**where, "delta": piece, "logprobs": lp},
                    token,
                )
            token += 1
        at = offsets[token - 1] if choice.tool_calls and token else end
        mark = _mark(plan, token)
        if refusal:
            emit(at, "response.refusal.done", {**where, "refusal": choice.text}, mark)
        else:
            done_text = {**where, "text": choice.text, "logprobs": body.logprobs(plan)}
            emit(at, "response.output_text.done", done_text, mark)
        emit(at, "response.content_part.done", {**where, "part": body.output_text(plan)}, mark)
        emit(at, "response.output_item.done", {"output_index": 0, "item": finished[0]}, mark)
        index = 1
    for call in choice.tool_calls:
        item_id = "fc_" + call.id
        opened = offsets[token] if token < len(offsets) else end
        emit(opened, "response.output_item.added", {"output_index": index, "item": added[index]}, token)
        for piece in call.argument_pieces:
            emit(offsets[token], "response.function_call_arguments.delta",
                 {"item_id": item_id, "output_index": index, "delta": piece}, token)  # fmt: skip
            token += 1
        at = offsets[token - 1] if token else first
        done = {"item_id": item_id, "output_index": index, "arguments": call.arguments_json}
        emit(at, "response.function_call_arguments.done", done, _mark(plan, token))
        emit(
            at,
            "response.output_item.done",
            {"output_index": index, "item": finished[index]},
            _mark(plan, token),
        )
        index += 1
    status = body.final_status(plan)
    emit(
        end,
        "response." + status,
        {"response": body.response_object(plan, request, status, finished)},
        TRAILER,
    )
    return out


def _mark(plan: ResponsePlan, sent: int) -> int:
    """`Frame.token` of an item's closing events after `sent` tokens: the last token's slot while
    more tokens follow (so a stream fault cuts before or after the whole item's end, never inside
    the stream's trailer), TRAILER after the last one."""
    return TRAILER if sent >= plan.stream_length else sent - 1
