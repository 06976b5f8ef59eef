"""Anthropic Messages: `POST /v1/messages` (streaming and not) and `/v1/messages/count_tokens`.

Requests are validated the way api.anthropic.com does it (`max_tokens` is required, roles are
`user`/`assistant`, content is a string or an array of blocks) and answered in its shapes: a
`message` object, the named-event SSE stream (see `anthropic_stream`), and
`{"type":"error","error":{"type","message"},"request_id"}` errors with a `request-id` header.
Credentials may come as `x-api-key` (curl, older SDKs) or `Authorization: Bearer` (anthropic 2.x);
any `anthropic-version` is accepted.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from llmsim.providers import anthropic_stream
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
from llmsim.simulation.plan import Choice, ResponsePlan, ToolCall
from llmsim.simulation.request import GenerationRequest, Message, ToolChoice, ToolSpec

PROVIDER = "anthropic"

# (status, error.type, default message) per error kind, as api.anthropic.com answers.
_ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", "Invalid request."),
    ErrorKind.AUTHENTICATION: (401, "authentication_error", "invalid x-api-key"),
    ErrorKind.PERMISSION: (
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    ErrorKind.NOT_FOUND: (404, "not_found_error", "Not found"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "invalid_request_error", "Method not allowed"),
    ErrorKind.TOO_LARGE: (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    ErrorKind.UNSUPPORTED_MEDIA: (415, "invalid_request_error", "Content-Type must be application/json"),
    ErrorKind.RATE_LIMIT: (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization. Please try again later.",
    ),
    ErrorKind.QUOTA: (
        429,
        "rate_limit_error",
        "You have reached your specified workspace API usage limits. "
        "You will regain access on the first day of next month.",
    ),
    ErrorKind.CONTEXT_LENGTH: (400, "invalid_request_error", "prompt is too long"),
    ErrorKind.SERVER_ERROR: (500, "api_error", "Internal server error"),
    ErrorKind.OVERLOADED: (529, "overloaded_error", "Overloaded"),
    ErrorKind.TIMEOUT: (504, "timeout_error", "Request timed out"),
}

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
}


def error_status(kind: ErrorKind) -> int:
    """The HTTP status Anthropic answers an error kind with (529 for overloaded)."""
    return _ERRORS[kind][0]


def error_object(error: ApiError) -> dict[str, Any]:
    """The inner `{"type", "message"}` object (also what an in-stream `event: error` carries)."""
    _, kind, default = _ERRORS[error.kind]
    inner: dict[str, Any] = {"type": kind, "message": error.message or default}
    if error.kind is ErrorKind.QUOTA:
        inner["details"] = {"error_code": "enforced_spend_limit_reached"}
    return inner


def error_answer(error: ApiError, request_id: str = "req_llmsim") -> BodyAnswer:
    """An Anthropic-shaped error response with its `request-id` header and any extra headers."""
    status = error_status(error.kind)
    body = {"type": "error", "error": error_object(error), "request_id": request_id}
    headers = {"Content-Type": "application/json", "request-id": request_id, **error.headers}
    return BodyAnswer(status=status, headers=headers, body=json_body(body))


def context_length_message(prompt_tokens: int, limit: int) -> str:
    """Anthropic's wording for a prompt over the context window."""
    return f"prompt is too long: {prompt_tokens} tokens > {limit} maximum"


def ratelimit_headers(
    *,
    requests_limit: int,
    requests_remaining: int,
    requests_reset_s: float,
    tokens_limit: int,
    tokens_remaining: int,
    tokens_reset_s: float,
    now_unix: float,
) -> dict[str, str]:
    """`anthropic-ratelimit-*` headers; resets are RFC 3339 instants, as the real API sends them."""

    def instant(after_s: float) -> str:
        moment = dt.datetime.fromtimestamp(now_unix + max(after_s, 0.0), tz=dt.UTC)
        return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")

    headers: dict[str, str] = {
        "anthropic-ratelimit-requests-limit": str(requests_limit),
        "anthropic-ratelimit-requests-remaining": str(max(requests_remaining, 0)),
        "anthropic-ratelimit-requests-reset": instant(requests_reset_s),
    }
    for prefix in ("tokens", "input-tokens", "output-tokens"):
        headers[f"anthropic-ratelimit-{prefix}-limit"] = str(tokens_limit)
        headers[f"anthropic-ratelimit-{prefix}-remaining"] = str(max(tokens_remaining, 0))
        headers[f"anthropic-ratelimit-{prefix}-reset"] = instant(tokens_reset_s)
    return headers


def request_id(plan: ResponsePlan) -> str:
    return "req_011" + plan.response_id


def message_id(plan: ResponsePlan) -> str:
    return "msg_011" + plan.response_id


def tool_use_id(call: ToolCall) -> str:
    return "toolu_01" + call.id


def stop_reason(choice: Choice) -> str:
    return _STOP_REASONS[choice.finish_reason]


def _bad(param: str, message: str) -> ApiError:
    return ApiError(ErrorKind.INVALID_REQUEST, f"{param}: {message}", param=param)


def _kind(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
    }.get(type(value), "null" if value is None else type(value).__name__)


def _block_text(block: Any, where: str) -> str:
    """Flatten one content block to text (tool_use as JSON input, tool_result as its content)."""
    if not isinstance(block, dict):
        raise _bad(where, f"Input should be a valid dictionary, got {_kind(block)}")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise _bad(f"{where}.type", "Field required")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise _bad(
                f"{where}.text", "Field required" if text is None else "Input should be a valid string"
            )
        return text
    if kind in ("tool_use", "server_tool_use"):
        if not isinstance(block.get("name"), str):
            raise _bad(f"{where}.name", "Field required")
        return json.dumps(block.get("input") or {})
    if kind in ("tool_result", "web_search_tool_result"):
        inner = block.get("content")
        if inner is None or isinstance(inner, str):
            return inner or ""
        if isinstance(inner, list):
            return "\n".join(_block_text(b, f"{where}.content.{i}") for i, b in enumerate(inner))
        raise _bad(f"{where}.content", "Input should be a valid string or list")
    if kind == "thinking":
        return ""
    return ""  # images, documents, redacted thinking...: no text to count


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_block_text(b, f"{where}.{i}") for i, b in enumerate(content))
    if content is None:
        raise _bad(where, "Field required")
    raise _bad(where, f"Input should be a valid string or list of content blocks, got {_kind(content)}")


def _messages(doc: dict[str, Any]) -> list[Message]:
    raw = doc.get("messages")
    if raw is None:
        raise _bad("messages", "Field required")
    if not isinstance(raw, list):
        raise _bad("messages", f"Input should be a valid list, got {_kind(raw)}")
    out: list[Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _bad(f"messages.{i}", f"Input should be a valid dictionary, got {_kind(item)}")
        role = item.get("role")
        if role is None:
            raise _bad(f"messages.{i}.role", "Field required")
        if role not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role", "Input should be 'user' or 'assistant'")
        out.append(Message(role=role, text=_content_text(item.get("content"), f"messages.{i}.content")))
    return out


def _system(doc: dict[str, Any]) -> list[Message]:
    raw = doc.get("system")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message("system", raw)] if raw else []
    if isinstance(raw, list):
        texts = []
        for i, block in enumerate(raw):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise _bad(f"system.{i}.type", "Input should be 'text'")
            texts.append(_block_text(block, f"system.{i}"))
        return [Message("system", "\n".join(texts))]
    raise _bad("system", f"Input should be a valid string or list of text blocks, got {_kind(raw)}")


def _tools(doc: dict[str, Any]) -> tuple[ToolSpec, ...]:
    raw = doc.get("tools")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad("tools", f"Input should be a valid list, got {_kind(raw)}")
    tools: list[ToolSpec] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _bad(f"tools.{i}", f"Input should be a valid dictionary, got {_kind(item)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"tools.{i}.name", "Field required")
        kind = item.get("type")
        if kind not in (None, "custom"):
            continue  # server tools (web_search, bash, ...) are accepted but never called
        schema = item.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"tools.{i}.custom.input_schema", "Field required")
        description = item.get("description")
        tools.append(
            ToolSpec(
                name=name, description=description if isinstance(description, str) else "", parameters=schema
            )
        )
    return tuple(tools)


def _tool_choice(doc: dict[str, Any], tools: tuple[ToolSpec, ...]) -> ToolChoice:
    raw = doc.get("tool_choice")
    if raw is None:
        return ToolChoice("auto")
    if not isinstance(raw, dict):
        raise _bad("tool_choice", f"Input should be a valid dictionary, got {_kind(raw)}")
    kind = raw.get("type")
    if kind == "auto":
        return ToolChoice("auto")
    if kind == "none":
        return ToolChoice("none")
    if kind == "any":
        if not tools:
            raise _bad("tool_choice", "tool_choice.type 'any' requires tools to be provided")
        return ToolChoice("required")
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str):
            raise _bad("tool_choice.tool.name", "Field required")
        if name not in {t.name for t in tools}:
            raise _bad("tool_choice", f"Tool '{name}' not found in tools")
        return ToolChoice("named", name)
    raise _bad("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")


def _stop_sequences(doc: dict[str, Any]) -> tuple[str, ...]:
    raw = doc.get("stop_sequences")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise _bad("stop_sequences", "Input should be a valid list of strings")
    return tuple(raw)


def _model(doc: dict[str, Any]) -> str:
    model = doc.get("model")
    if model is None:
        raise _bad("model", "Field required")
    if not isinstance(model, str) or not model:
        raise _bad("model", "Input should be a valid string")
    return model


def _json_schema(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Structured outputs (`output_format: {"type": "json_schema", "schema": ...}`)."""
    for key in ("output_format", "output_config"):
        raw = doc.get(key)
        if isinstance(raw, dict):
            fmt = raw.get("format") if key == "output_config" else raw
            if (
                isinstance(fmt, dict)
                and fmt.get("type") == "json_schema"
                and isinstance(fmt.get("schema"), dict)
            ):
                return dict(fmt["schema"])
    return None


def parse_messages(facts: HttpRequestFacts, *, count_only: bool = False) -> GenerationRequest:
    """Validate a Messages (or count_tokens) request and translate it."""
    doc = parse_json_object(facts.body)
    model = _model(doc)
    messages = _system(doc) + _messages(doc)
    tools = _tools(doc)
    choice = _tool_choice(doc, tools)
    max_tokens: int | None = None
    stream = False
    stop: tuple[str, ...] = ()
    if not count_only:
        raw_max = doc.get("max_tokens")
        if raw_max is None:
            raise _bad("max_tokens", "Field required")
        if isinstance(raw_max, bool) or not isinstance(raw_max, int):
            raise _bad("max_tokens", f"Input should be a valid integer, got {_kind(raw_max)}")
        if raw_max < 1:
            raise _bad("max_tokens", "Input should be greater than or equal to 1")
        max_tokens = raw_max
        raw_stream = doc.get("stream", False)
        if not isinstance(raw_stream, bool):
            raise _bad("stream", "Input should be a valid boolean")
        stream = raw_stream
        stop = _stop_sequences(doc)
        for key in ("temperature", "top_p"):
            value = doc.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise _bad(key, "Input should be a valid number")
    metadata = doc.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    return GenerationRequest(
        provider=PROVIDER,
        operation="count_tokens" if count_only else "chat",
        model=model,
        messages=tuple(messages),
        max_tokens=max_tokens,
        stop=stop,
        stream=stream,
        tools=tools,
        tool_choice=choice,
        json_schema=_json_schema(doc),
        client_request_id=facts.headers.get("x-llmsim-request-id") or facts.headers.get("idempotency-key"),
        extra={"user_id": user} if isinstance(user, str) else {},
    )


def content_blocks(choice: Choice) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if choice.pieces or not choice.tool_calls:
        blocks.append({"type": "text", "text": choice.text})
    for call in choice.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": tool_use_id(call), "name": call.name, "input": call.arguments}
        )
    return blocks


def usage(plan: ResponsePlan, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": plan.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_body(plan: ResponsePlan) -> dict[str, Any]:
    """The non-streamed `message` object (Anthropic has no `n`: the first choice answers)."""
    choice = plan.choices[0]
    return {
        "id": message_id(plan),
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content_blocks(choice),
        "stop_reason": stop_reason(choice),
        "stop_sequence": choice.stop_sequence,
        "usage": usage(plan, choice.output_tokens),
    }


def _request_id_of(facts: HttpRequestFacts) -> str:
    return "req_011" + facts.headers.get("x-llmsim-request-id", "error")


class Messages:
    """`POST /v1/messages`."""

    provider = PROVIDER
    operation = "chat"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return parse_messages(facts)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        headers = {"request-id": request_id(plan)}
        if request.stream:
            frames = anthropic_stream.frames(plan, message_body(plan))
            return StreamAnswer(200, {**anthropic_stream.STREAM_HEADERS, **headers}, tuple(frames))
        body = json_body(message_body(plan))
        return BodyAnswer(200, {"Content-Type": "application/json", **headers}, body, at_s=plan.timing.e2e_s)

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        return error_answer(error, _request_id_of(facts))


class CountTokens:
    """`POST /v1/messages/count_tokens`: `{"input_tokens": N}` by the shared estimator."""

    provider = PROVIDER
    operation = "count_tokens"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return parse_messages(facts, count_only=True)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        headers = {"Content-Type": "application/json", "request-id": request_id(plan)}
        return BodyAnswer(
            200, headers, json_body({"input_tokens": plan.prompt_tokens}), at_s=plan.timing.queue_s
        )

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        return error_answer(error, _request_id_of(facts))


def midstream_error_frame(error: ApiError) -> bytes:
    """The in-stream `event: error` (the SDK raises APIStatusError with status 200)."""
    return anthropic_stream.error_event(error_object(error))


def malformed_frame() -> bytes:
    """A content_block_delta cut off inside its JSON (the SDK's json parse fails)."""
    return anthropic_stream.MALFORMED
