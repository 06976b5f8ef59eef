"""OpenAI `POST /v1/responses` (Responses API), non-streaming and the streaming event sequence."""

from __future__ import annotations

from typing import Any

from llmsim.providers import fields, openai_common, sse
from llmsim.providers.base import (
    TRAILER,
    Answer,
    ApiError,
    BodyAnswer,
    ErrorKind,
    Frame,
    HttpRequestFacts,
    StreamAnswer,
    json_body,
    parse_json_object,
)
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest, Message, ToolSpec


class Responses(openai_common.OpenAIEndpoint):
    operation = "responses"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        doc = parse_json_object(facts.body)
        model = fields.string(doc, "model")
        if not model:
            raise ApiError(ErrorKind.INVALID_REQUEST, "Missing required parameter: 'model'.", param="model")
        messages = _input_messages(fields.required(doc, "input"))
        instructions = fields.string(doc, "instructions")
        if instructions:
            messages = (Message("system", instructions), *messages)
        tools: list[ToolSpec] = []
        for i, tool in enumerate(fields.array(doc, "tools") or []):
            if not isinstance(tool, dict):
                raise ApiError(
                    ErrorKind.INVALID_REQUEST,
                    f"Invalid type for 'tools[{i}]': expected an object.",
                    param=f"tools[{i}]",
                )
            if tool.get("type") == "function":
                if not isinstance(tool.get("name"), str):
                    raise ApiError(
                        ErrorKind.INVALID_REQUEST,
                        f"Missing required parameter: 'tools[{i}].name'.",
                        param=f"tools[{i}].name",
                    )
                tools.append(
                    ToolSpec(
                        tool["name"],
                        str(tool.get("description") or ""),
                        tool.get("parameters") or {"type": "object"},
                    )
                )
        choice = openai_common.tool_choice(doc.get("tool_choice"), tools, nested=False)
        schema, json_mode = None, False
        fmt = (fields.obj(doc, "text") or {}).get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            schema, json_mode = dict(fmt.get("schema") or {"type": "object"}), True
        elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
            json_mode = True
        return GenerationRequest(
            provider=self.provider,
            operation="responses",
            model=model,
            messages=messages,
            max_tokens=fields.integer(doc, "max_output_tokens", minimum=16),
            stream=fields.boolean(doc, "stream"),
            tools=tuple(tools),
            tool_choice=choice,
            json_schema=schema,
            json_mode=json_mode,
            extra={
                "instructions": instructions,
                "tool_choice": doc.get("tool_choice", "auto"),
                "tools": doc.get("tools") or [],
            },
        )

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        headers = self.headers(plan)
        if request.stream:
            return StreamAnswer(200, {**sse.STREAM_HEADERS, **headers}, tuple(_frames(plan, request)))
        body = _response(plan, request, "completed", _output_items(plan, done=True))
        return BodyAnswer(
            200, {"Content-Type": "application/json", **headers}, json_body(body), at_s=plan.timing.e2e_s
        )


def _input_messages(raw: Any) -> tuple[Message, ...]:
    if isinstance(raw, str):
        return (Message("user", raw),)
    if not isinstance(raw, list) or not raw:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            "Invalid 'input': expected a string or a non-empty array of input items.",
            param="input",
        )
    out: list[Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Invalid type for 'input[{i}]': expected an object.",
                param=f"input[{i}]",
            )
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if not isinstance(role, str):
                raise ApiError(
                    ErrorKind.INVALID_REQUEST,
                    f"Missing required parameter: 'input[{i}].role'.",
                    param=f"input[{i}].role",
                )
            out.append(Message(role, openai_common.message_text(item.get("content"), f"input[{i}].content")))
        elif kind == "function_call_output":
            out.append(Message("tool", str(item.get("output", ""))))
        else:
            out.append(Message("assistant", str(item.get("arguments", ""))))
    return tuple(out)


def _usage(plan: ResponsePlan) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": plan.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": plan.total_tokens,
    }


def _output_items(plan: ResponsePlan, *, done: bool) -> list[dict[str, Any]]:
    choice = plan.choices[0]
    items: list[dict[str, Any]] = []
    if choice.tool_calls:
        for call in choice.tool_calls:
            items.append({"type": "function_call", "id": "fc_" + call.id, "call_id": "call_" + call.id, "name": call.name,
                          "arguments": call.arguments_json if done else "", "status": "completed" if done else "in_progress"})  # fmt: skip
    else:
        content = (
            [{"type": "output_text", "text": choice.text, "annotations": [], "logprobs": []}] if done else []
        )
        items.append({"id": "msg_" + plan.response_id, "type": "message", "status": "completed" if done else "in_progress",
                      "role": "assistant", "content": content})  # fmt: skip
    return items


def _response(
    plan: ResponsePlan, request: GenerationRequest, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    choice = plan.choices[0]
    incomplete = (
        {"reason": "max_output_tokens"}
        if choice.finish_reason == "length" and status == "completed"
        else None
    )
    return {
        "id": "resp_" + plan.response_id,
        "object": "response",
        "created_at": plan.created,
        "status": "incomplete" if incomplete else status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": request.extra.get("instructions"),
        "max_output_tokens": request.max_tokens,
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": request.extra.get("tool_choice", "auto"),
        "tools": request.extra.get("tools", []),
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(plan) if status == "completed" else None,
        "user": None,
        "metadata": {},
    }


def _frames(plan: ResponsePlan, request: GenerationRequest) -> list[Frame]:
    seq = iter(range(1 << 30))
    frames: list[Frame] = []
    offsets = plan.timing.token_offsets_s
    first = offsets[0] if offsets else plan.timing.ttft_s
    end = plan.timing.e2e_s

    def emit(at: float, kind: str, payload: dict[str, Any], token: int = -1) -> None:
        frames.append(
            Frame(at, sse.event(kind, {"type": kind, "sequence_number": next(seq), **payload}), token)
        )

    in_progress = _response(plan, request, "in_progress", [])
    emit(first, "response.created", {"response": in_progress})
    emit(first, "response.in_progress", {"response": in_progress})
    choice = plan.choices[0]
    added = _output_items(plan, done=False)
    finished = _output_items(plan, done=True)
    if choice.tool_calls:
        k = 0
        for i, call in enumerate(choice.tool_calls):
            emit(
                offsets[k] if k < len(offsets) else first,
                "response.output_item.added",
                {"output_index": i, "item": added[i]},
                k,
            )
            for piece in call.argument_pieces:
                emit(
                    offsets[k],
                    "response.function_call_arguments.delta",
                    {"item_id": "fc_" + call.id, "output_index": i, "delta": piece},
                    k,
                )
                k += 1
            at = offsets[k - 1] if k else first
            emit(
                at,
                "response.function_call_arguments.done",
                {"item_id": "fc_" + call.id, "output_index": i, "arguments": call.arguments_json},
                TRAILER,
            )
            emit(at, "response.output_item.done", {"output_index": i, "item": finished[i]}, TRAILER)
    else:
        item_id = "msg_" + plan.response_id
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        emit(first, "response.output_item.added", {"output_index": 0, "item": added[0]})
        emit(
            first,
            "response.content_part.added",
            {"item_id": item_id, "output_index": 0, "content_index": 0, "part": part},
        )
        for k, piece in enumerate(choice.pieces):
            emit(offsets[k], "response.output_text.delta",
                 {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}, k)  # fmt: skip
        done_part = {**part, "text": choice.text}
        emit(
            end,
            "response.output_text.done",
            {"item_id": item_id, "output_index": 0, "content_index": 0, "text": choice.text, "logprobs": []},
            TRAILER,
        )
        emit(
            end,
            "response.content_part.done",
            {"item_id": item_id, "output_index": 0, "content_index": 0, "part": done_part},
            TRAILER,
        )
        emit(end, "response.output_item.done", {"output_index": 0, "item": finished[0]}, TRAILER)
    emit(end, "response.completed", {"response": _response(plan, request, "completed", finished)}, TRAILER)
    return frames
