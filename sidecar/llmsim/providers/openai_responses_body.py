"""The Responses API's `response` object and its output items (also what the stream's lifecycle
and item events carry)."""

from __future__ import annotations

from typing import Any

from llmsim.providers import openai_common
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest


def usage(plan: ResponsePlan) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": plan.cached_tokens},
        "output_tokens": plan.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": plan.total_tokens,
    }


_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Finish reasons that end a response `incomplete`, and the `incomplete_details.reason` they give."""


def is_cut(plan: ResponsePlan) -> bool:
    """Whether `max_output_tokens` or the content filter cut the answer (then it ends `incomplete`)."""
    return plan.choices[0].finish_reason in _INCOMPLETE


def is_refusal(plan: ResponsePlan) -> bool:
    """Whether the model refused (the message's content is a `refusal` part)."""
    return plan.choices[0].finish_reason == "refusal"


def message_id(plan: ResponsePlan) -> str:
    return "msg_" + plan.response_id


def logprobs(
    plan: ResponsePlan, start: int = 0, stop: int | None = None, *, delta: bool = False
) -> list[Any]:
    """The `logprobs` of pieces [start, stop) (empty unless requested); a delta event's entries
    carry no `bytes`, as its event type has none."""
    entries = plan.choices[0].logprobs or ()
    return [openai_common.logprob_entry(e, with_bytes=not delta) for e in entries[start:stop]]


def output_text(plan: ResponsePlan) -> dict[str, Any]:
    """The finished content part: `output_text`, or `refusal` when the model refused."""
    if is_refusal(plan):
        return {"type": "refusal", "refusal": plan.choices[0].text}
    return {
        "type": "output_text",
        "text": plan.choices[0].text,
        "annotations": [],
        "logprobs": logprobs(plan),
    }


def output_items(plan: ResponsePlan, *, done: bool) -> list[dict[str, Any]]:
    """The output items, in progress (as `output_item.added` announces them) or finished: a
    `message` when the answer has text (or nothing else), then one `function_call` per call."""
    choice = plan.choices[0]
    items: list[dict[str, Any]] = []
    if choice.pieces or not choice.tool_calls:
        status = ("incomplete" if is_cut(plan) else "completed") if done else "in_progress"
        content = [output_text(plan)] if done else []
        items.append({"id": message_id(plan), "type": "message", "status": status, "role": "assistant",
                      "content": content})  # fmt: skip
    for call in choice.tool_calls:
        items.append({"id": "fc_" + call.id, "type": "function_call", "status": "completed" if done else "in_progress",
                      "arguments": call.arguments_json if done else "", "call_id": "call_" + call.id,
                      "name": call.name})  # fmt: skip
    return items


def response_object(
    plan: ResponsePlan, request: GenerationRequest, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    """The `response` object; `status` is `in_progress`, `completed` or `incomplete`."""
    return {
        "id": "resp_" + plan.response_id,
        "object": "response",
        "created_at": plan.created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": _INCOMPLETE[plan.choices[0].finish_reason]}
        if status == "incomplete"
        else None,
        "instructions": request.extra.get("instructions"),
        "max_output_tokens": request.max_tokens,
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": request.parallel_tool_calls,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": request.extra.get("tool_choice", "auto"),
        "tools": request.extra.get("tools", []),
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage(plan) if status != "in_progress" else None,
        "user": None,
        "metadata": {},
    }


def final_status(plan: ResponsePlan) -> str:
    return "incomplete" if is_cut(plan) else "completed"
