"""OpenAI `POST /v1/responses` (Responses API): parsing, the `response` object and its output
items; the streamed event sequence is in `openai_responses_stream`."""

from __future__ import annotations

import dataclasses
from typing import Any

from llmsim.providers import fields, openai_common, openai_responses_body, openai_responses_stream, sse
from llmsim.providers.base import (
    Answer,
    ApiError,
    BodyAnswer,
    ErrorKind,
    HttpRequestFacts,
    StreamAnswer,
    json_body,
    parse_json_object,
)
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest, Message, PastToolCall, ToolResult, ToolSpec

CONTEXT_LENGTH_MESSAGE = (
    "Your input exceeds the context window of this model. Please adjust your input and try again."
)
"""How the Responses API words `context_length_exceeded` (with `param: "input"`), unlike Chat
Completions' "maximum context length is N tokens" about `messages`."""


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
        raw_tools = fields.array(doc, "tools") or []
        openai_common.check_tool_count(raw_tools)
        for i, tool in enumerate(raw_tools):
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
                if tool.get("strict") is True:
                    openai_common.check_strict_schema(
                        tool.get("parameters"), f"function '{tool['name']}'", f"tools[{i}].parameters"
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
            if fmt.get("strict") is True:
                openai_common.check_strict_schema(
                    fmt.get("schema"), f"text.format '{fmt.get('name', '')}'", "text.format"
                )
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
            parallel_tool_calls=fields.boolean(doc, "parallel_tool_calls", default=True),
            logprobs=_requested_logprobs(doc),
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
            frames = openai_responses_stream.frames(plan, request)
            return StreamAnswer(200, {**sse.STREAM_HEADERS, **headers}, tuple(frames))
        body = openai_responses_body.response_object(
            plan,
            request,
            openai_responses_body.final_status(plan),
            openai_responses_body.output_items(plan, done=True),
        )
        return BodyAnswer(
            200, {"Content-Type": "application/json", **headers}, json_body(body), at_s=plan.timing.e2e_s
        )

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        if error.kind is ErrorKind.CONTEXT_LENGTH:
            error = dataclasses.replace(error, message=CONTEXT_LENGTH_MESSAGE, param="input")
        return super().render_error(error, facts)


LOGPROBS_INCLUDE = "message.output_text.logprobs"


def _requested_logprobs(doc: dict[str, Any]) -> int | None:
    """Logprobs come with `include: ["message.output_text.logprobs"]`, `top_logprobs` (0..20) of them."""
    include = fields.array(doc, "include") or []
    top = fields.integer(doc, "top_logprobs", minimum=0, maximum=20)
    return (top or 0) if LOGPROBS_INCLUDE in include else None


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
            raw_output = item.get("output", "")
            output = (
                raw_output
                if isinstance(raw_output, str)
                else openai_common.message_text(raw_output, f"input[{i}].output")
            )
            call_id = item.get("call_id")
            result = ToolResult(output, call_id=call_id if isinstance(call_id, str) else None)
            out.append(Message("tool", output, tool_results=(result,)))
        elif kind == "function_call" and isinstance(item.get("name"), str):
            arguments = str(item.get("arguments", ""))
            call_id = item.get("call_id")
            call = PastToolCall(item["name"], arguments, call_id if isinstance(call_id, str) else None)
            out.append(Message("assistant", arguments, tool_calls=(call,)))
        else:
            out.append(Message("assistant", str(item.get("arguments", ""))))
    return tuple(out)
