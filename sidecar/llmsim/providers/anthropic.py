"""Anthropic Messages: `POST /v1/messages` (streaming and not) and `/v1/messages/count_tokens`.

Requests are validated the way api.anthropic.com does it (`max_tokens` is required, roles are
`user`/`assistant`, content is a string or an array of blocks) and answered in its shapes: a
`message` object, the named-event SSE stream (see `anthropic_stream`), and
`{"type":"error","error":{"type","message"},"request_id"}` errors with a `request-id` header.
Credentials may come as `x-api-key` (curl, older SDKs) or `Authorization: Bearer` (anthropic 2.x);
any `anthropic-version` is accepted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

from llmsim.providers import anthropic_request, anthropic_stream
from llmsim.providers.base import (
    Answer,
    ApiError,
    BodyAnswer,
    ErrorKind,
    HttpRequestFacts,
    StreamAnswer,
    json_body,
)
from llmsim.simulation.plan import Choice, ResponsePlan, ToolCall
from llmsim.simulation.request import GenerationRequest, Operation

PROVIDER = anthropic_request.PROVIDER

# (status, error.type, default message) per error kind, as api.anthropic.com answers.
_ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", "Invalid request."),
    ErrorKind.AUTHENTICATION: (401, "authentication_error", "invalid x-api-key"),
    ErrorKind.INVALID_KEY: (401, "authentication_error", "invalid x-api-key"),
    ErrorKind.CONTENT_FILTER: (400, "invalid_request_error", "Output blocked by content filtering policy"),
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
    ErrorKind.BAD_GATEWAY: (502, "api_error", "Bad gateway"),
}

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
    "refusal": "refusal",
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


def _instant(now_unix: float, after_s: float) -> str:
    return _rfc3339(int(now_unix + max(after_s, 0.0)))


@functools.lru_cache(maxsize=512)
def _rfc3339(unix_s: int) -> str:
    """A whole second as RFC 3339 UTC (cached: the headers of one minute share a few dozen)."""
    return dt.datetime.fromtimestamp(unix_s, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_family_headers(
    family: str, limit: int, remaining: int, reset_s: float, now_unix: float
) -> dict[str, str]:
    """`anthropic-ratelimit-{family}-{limit,remaining,reset}` (reset: an RFC 3339 instant)."""
    return {
        f"anthropic-ratelimit-{family}-limit": str(limit),
        f"anthropic-ratelimit-{family}-remaining": str(max(remaining, 0)),
        f"anthropic-ratelimit-{family}-reset": _instant(now_unix, reset_s),
    }


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
    """`anthropic-ratelimit-*` headers for one requests and one token bucket (the token bucket
    reported as the `tokens`, `input-tokens` and `output-tokens` families); resets are RFC 3339
    instants, as the real API sends them."""
    headers = token_family_headers("requests", requests_limit, requests_remaining, requests_reset_s, now_unix)
    for family in ("tokens", "input-tokens", "output-tokens"):
        headers.update(token_family_headers(family, tokens_limit, tokens_remaining, tokens_reset_s, now_unix))
    return headers


def request_id(plan: ResponsePlan) -> str:
    return "req_011" + plan.response_id


def error_request_id(simulator_id: str) -> str:
    """The `request_id` of an error answer: Anthropic's shape of the id the simulator assigned."""
    return "req_011" + (simulator_id or "error")


def message_id(plan: ResponsePlan) -> str:
    return "msg_011" + plan.response_id


def tool_use_id(call: ToolCall) -> str:
    return "toolu_01" + call.id


def stop_reason(choice: Choice) -> str:
    return _STOP_REASONS[choice.finish_reason]


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
    """Anthropic's usage: `input_tokens` counts only the prompt after the cached and the newly
    cached parts, which are reported on their own."""
    read, written = plan.cached_tokens, plan.cache_write_tokens
    return {
        "input_tokens": plan.prompt_tokens - read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
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


def _worded(error: ApiError, facts: HttpRequestFacts) -> ApiError:
    """A model-not-found error in Anthropic's wording (`model: <name>`)."""
    model = anthropic_request.model_hint(facts)
    if error.kind is ErrorKind.NOT_FOUND and error.param == "model" and model:
        return dataclasses.replace(error, message=f"model: {model}")
    return error


def _request_id_of(facts: HttpRequestFacts) -> str:
    return error_request_id(facts.request_id)


class Messages:
    """`POST /v1/messages`."""

    provider = PROVIDER
    operation: Operation = "chat"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return anthropic_request.parse_messages(facts)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        headers = {"request-id": request_id(plan)}
        if request.stream:
            frames = anthropic_stream.frames(plan, message_body(plan))
            return StreamAnswer(200, {**anthropic_stream.STREAM_HEADERS, **headers}, tuple(frames))
        body = json_body(message_body(plan))
        return BodyAnswer(200, {"Content-Type": "application/json", **headers}, body, at_s=plan.timing.e2e_s)

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        return error_answer(_worded(error, facts), _request_id_of(facts))


class CountTokens:
    """`POST /v1/messages/count_tokens`: `{"input_tokens": N}` by the shared estimator."""

    provider = PROVIDER
    operation: Operation = "count_tokens"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return anthropic_request.parse_messages(facts, count_only=True)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        headers = {"Content-Type": "application/json", "request-id": request_id(plan)}
        return BodyAnswer(
            200, headers, json_body({"input_tokens": plan.prompt_tokens}), at_s=plan.timing.queue_s
        )

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        return error_answer(_worded(error, facts), _request_id_of(facts))


def midstream_error_frame(error: ApiError) -> bytes:
    """The in-stream `event: error` (the SDK raises APIStatusError with status 200)."""
    return anthropic_stream.error_event(error_object(error))


def malformed_frame() -> bytes:
    """A content_block_delta cut off inside its JSON (the SDK's json parse fails)."""
    return anthropic_stream.MALFORMED


def _model_info(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}


def list_models(
    listed: list[str], model_id: str | None, *, strict: bool = False
) -> tuple[int, dict[str, Any]]:
    """`GET /v1/models[/{id}]` in Anthropic's shape (a page with `has_more`): (status, body)."""
    if model_id is None:
        data = [_model_info(m) for m in listed]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return 200, {"data": data, "has_more": False, "first_id": first, "last_id": last}
    if strict and model_id not in listed:
        error = ApiError(ErrorKind.NOT_FOUND, f"model: {model_id}")
        return 404, {"type": "error", "error": error_object(error), "request_id": "req_011models"}
    return 200, _model_info(model_id)
