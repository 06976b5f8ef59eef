"""Pieces shared by the OpenAI and Azure OpenAI endpoints: errors, headers, messages, tools."""

from __future__ import annotations

import json
from typing import Any

from llmsim.providers import fields, limits
from llmsim.providers.base import (
    ApiError,
    BodyAnswer,
    ErrorKind,
    HttpRequestFacts,
    json_body,
    parse_json_object,
)
from llmsim.simulation.logprobs import TokenLogprob
from llmsim.simulation.plan import Choice, FinishReason, ResponsePlan
from llmsim.simulation.request import (
    GenerationRequest,
    Message,
    PastToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)

# (status, type, code) of each error kind, as api.openai.com answers it.
_ERRORS: dict[ErrorKind, tuple[int, str, str | None]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid_request_error", None),
    ErrorKind.AUTHENTICATION: (401, "invalid_request_error", None),
    ErrorKind.INVALID_KEY: (401, "invalid_request_error", "invalid_api_key"),
    ErrorKind.PERMISSION: (403, "invalid_request_error", "unsupported_country_region_territory"),
    ErrorKind.NOT_FOUND: (404, "invalid_request_error", "model_not_found"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "invalid_request_error", None),
    ErrorKind.TOO_LARGE: (413, "invalid_request_error", "request_too_large"),
    ErrorKind.UNSUPPORTED_MEDIA: (415, "invalid_request_error", None),
    ErrorKind.RATE_LIMIT: (429, "requests", "rate_limit_exceeded"),
    ErrorKind.QUOTA: (429, "insufficient_quota", "insufficient_quota"),
    ErrorKind.CONTEXT_LENGTH: (400, "invalid_request_error", "context_length_exceeded"),
    ErrorKind.CONTENT_FILTER: (400, "invalid_request_error", "invalid_prompt"),
    ErrorKind.SERVER_ERROR: (500, "server_error", None),
    ErrorKind.OVERLOADED: (503, "server_error", None),
    ErrorKind.TIMEOUT: (504, "server_error", None),
    ErrorKind.BAD_GATEWAY: (502, "server_error", None),
}


def error_status(kind: ErrorKind) -> int:
    return _ERRORS[kind][0]


def error_answer(error: ApiError, request_id: str, *, azure: bool = False) -> BodyAnswer:
    """An OpenAI-shaped error: `{"error": {"message", "type", "param", "code"}}` with x-request-id."""
    status, kind, code = _ERRORS[error.kind]
    if azure and error.kind is ErrorKind.RATE_LIMIT:
        code = "429"
    body: dict[str, Any] = {
        "error": {"message": error.message, "type": kind, "param": error.param, "code": code}
    }
    if azure:
        body = _azure_error(error, body)
    headers = {"Content-Type": "application/json", "x-request-id": request_id, **error.headers}
    if azure:
        headers["apim-request-id"] = request_id
    return BodyAnswer(status=status, headers=headers, body=json_body(body))


AZURE_PROMPT_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_AZURE_AUTH = {
    ErrorKind.AUTHENTICATION: ("401", "Access denied due to invalid subscription key or wrong API endpoint. Make "
                               "sure to provide a valid key for an active subscription and use a correct regional "
                               "API endpoint for your resource."),
    ErrorKind.INVALID_KEY: ("401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                            "to provide a valid key for an active subscription and use a correct regional API "
                            "endpoint for your resource."),
    ErrorKind.PERMISSION: ("PermissionDenied", "The principal does not have permission to perform the data "
                           "action Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action."),
}  # fmt: skip


def content_filter_results(filtered: str | None, *, jailbreak: bool = False) -> dict[str, Any]:
    """Azure's per-category verdicts; `filtered`: the category that tripped (severity `medium`)."""
    out: dict[str, Any] = {
        c: {"filtered": c == filtered, "severity": "medium" if c == filtered else "safe"}
        for c in ("hate", "self_harm", "sexual", "violence")
    }
    if jailbreak:
        out["jailbreak"] = {"filtered": False, "detected": False}
    return out


def _azure_error(error: ApiError, body: dict[str, Any]) -> dict[str, Any]:
    """Azure's own shapes: the prompt filter's 400 (`code: content_filter`, `innererror`) and the
    gateway's 401/403 (`{"error": {"code", "message"}}`)."""
    if error.kind is ErrorKind.CONTENT_FILTER:
        inner = {"code": "ResponsibleAIPolicyViolation",
                 "content_filter_result": content_filter_results("violence", jailbreak=True)}  # fmt: skip
        return {"error": {"message": error.message or AZURE_PROMPT_FILTER_MESSAGE, "type": None, "param": "prompt",
                          "code": "content_filter", "status": 400, "innererror": inner}}  # fmt: skip
    if error.kind in _AZURE_AUTH:
        code, message = _AZURE_AUTH[error.kind]
        return {"error": {"code": code, "message": error.message or message}}
    return body


def base_headers(request_id: str, processing_ms: float, *, azure: bool = False) -> dict[str, str]:
    headers = {
        "x-request-id": request_id,
        "openai-processing-ms": str(max(0, round(processing_ms))),
        "openai-version": "2020-10-01",
    }
    if azure:
        headers["apim-request-id"] = request_id
    return headers


def message_text(content: Any, param: str) -> str:
    """Flatten OpenAI message content (string or array of parts) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                kind = part.get("type")
                if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif not isinstance(kind, str):
                    raise ApiError(
                        ErrorKind.INVALID_REQUEST,
                        f"Missing required parameter: '{param}[{i}].type'.",
                        param=f"{param}[{i}].type",
                    )
            else:
                raise ApiError(
                    ErrorKind.INVALID_REQUEST,
                    f"Invalid type for '{param}[{i}]': expected an object.",
                    param=f"{param}[{i}]",
                )
        return "\n".join(texts)
    raise ApiError(
        ErrorKind.INVALID_REQUEST,
        f"Invalid type for '{param}': expected a string or an array of content parts.",
        param=param,
    )


def chat_messages(doc: dict[str, Any]) -> tuple[Message, ...]:
    raw = fields.required(doc, "messages")
    if not isinstance(raw, list):
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            "Invalid type for 'messages': expected an array of objects.",
            param="messages",
        )
    if not raw:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
        )
    out: list[Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Invalid type for 'messages[{i}]': expected an object.",
                param=f"messages[{i}]",
            )
        role = item.get("role")
        if not isinstance(role, str):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Missing required parameter: 'messages[{i}].role'.",
                param=f"messages[{i}].role",
            )
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
                param=f"messages[{i}].role",
            )
        text = message_text(item.get("content"), f"messages[{i}].content")
        calls: tuple[PastToolCall, ...] = ()
        results: tuple[ToolResult, ...] = ()
        if role == "assistant" and isinstance(item.get("tool_calls"), list):
            text += json.dumps(item["tool_calls"])
            calls = past_tool_calls(item["tool_calls"])
        elif role == "tool":
            call_id = item.get("tool_call_id")
            results = (ToolResult(text, call_id=call_id if isinstance(call_id, str) else None),)
        elif role == "function":
            name = item.get("name")
            results = (ToolResult(text, name=name if isinstance(name, str) else ""),)
        out.append(Message(role=role, text=text, tool_calls=calls, tool_results=results))
    return tuple(out)


def past_tool_calls(raw: list[Any]) -> tuple[PastToolCall, ...]:
    """The `tool_calls` of an assistant message the client sends back (malformed entries skipped:
    they only inform the conversation state)."""
    calls: list[PastToolCall] = []
    for call in raw:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        arguments = fn.get("arguments")
        call_id = call.get("id")
        calls.append(
            PastToolCall(
                name=fn["name"],
                arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
                call_id=call_id if isinstance(call_id, str) else None,
            )
        )
    return tuple(calls)


def check_tool_count(raw: list[Any]) -> None:
    """At most `limits.OPENAI_MAX_TOOLS` tools, in OpenAI's wording."""
    if len(raw) > limits.OPENAI_MAX_TOOLS:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"Invalid 'tools': array too long. Expected an array with maximum length "
            f"{limits.OPENAI_MAX_TOOLS}, but got an array with length {len(raw)} instead.",
            param="tools",
        )


def check_strict_schema(schema: Any, what: str, param: str) -> None:
    """A strict schema within the Structured Outputs limits (`limits.strict_schema_problem`)."""
    problem = limits.strict_schema_problem(schema)
    if problem is not None:
        raise ApiError(ErrorKind.INVALID_REQUEST, f"Invalid schema for {what}: {problem}.", param=param)


def chat_tools(doc: dict[str, Any]) -> tuple[tuple[ToolSpec, ...], ToolChoice]:
    raw = fields.array(doc, "tools") or []
    check_tool_count(raw)
    tools: list[ToolSpec] = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Missing required parameter: 'tools[{i}].function.name'.",
                param=f"tools[{i}].function.name",
            )
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Invalid type for 'tools[{i}].function.parameters': expected an object.",
                param=f"tools[{i}].function.parameters",
            )
        if fn.get("strict") is True:
            check_strict_schema(params, f"function '{fn['name']}'", f"tools[{i}].function.parameters")
        tools.append(
            ToolSpec(name=fn["name"], description=str(fn.get("description") or ""), parameters=params)
        )
    return tuple(tools), tool_choice(doc.get("tool_choice"), tools, nested=True)


def tool_choice(raw: Any, tools: list[ToolSpec], *, nested: bool) -> ToolChoice:
    """Chat (`{"type":"function","function":{"name"}}`) and Responses (`{"type":"function","name"}`) forms."""
    if raw is None:
        return ToolChoice("auto")
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    if isinstance(raw, dict) and raw.get("type") == "function":
        name = (raw.get("function") or {}).get("name") if nested else raw.get("name")
        if not isinstance(name, str):
            name = raw.get("name") if isinstance(raw.get("name"), str) else None
        if name is None:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                "Missing required parameter: 'tool_choice.function.name'.",
                param="tool_choice",
            )
        if name not in {t.name for t in tools}:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Invalid value for 'tool_choice': function '{name}' is not among the tools.",
                param="tool_choice",
            )
        return ToolChoice("named", name)
    raise ApiError(
        ErrorKind.INVALID_REQUEST,
        "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or a function.",
        param="tool_choice",
    )


def response_format(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(JSON schema, json mode) from `response_format`."""
    raw = fields.obj(doc, "response_format")
    if raw is None:
        return None, False
    kind = raw.get("type")
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                "Missing required parameter: 'response_format.json_schema'.",
                param="response_format.json_schema",
            )
        if spec.get("strict") is True:
            check_strict_schema(
                spec.get("schema"), f"response_format '{spec.get('name', '')}'", "response_format"
            )
        return dict(spec.get("schema") or {"type": "object"}), True
    raise ApiError(
        ErrorKind.INVALID_REQUEST,
        f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
        param="response_format.type",
    )


def finish_reason(choice: Choice, request: GenerationRequest) -> str:
    """OpenAI's finish_reason; a forced named function reports `stop`, as the real API does."""
    reason: FinishReason = choice.finish_reason
    if reason == "tool_calls":
        return "stop" if request.tool_choice.mode == "named" else "tool_calls"
    if reason in ("stop_sequence", "refusal"):
        return "stop"  # a refusal is told by `message.refusal`, not by the finish reason
    return reason


def requested_logprobs(doc: dict[str, Any], flag: str = "logprobs") -> int | None:
    """Chat Completions' `logprobs: true` + `top_logprobs` (0..20): None when not asked for."""
    want = fields.boolean(doc, flag)
    top = fields.integer(doc, "top_logprobs", minimum=0, maximum=20)
    if top is not None and not want:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"Invalid value for '{flag}': must be true when 'top_logprobs' is specified.",
            param=flag,
        )
    return (top or 0) if want else None


def logprob_entry(entry: TokenLogprob, *, with_bytes: bool = True) -> dict[str, Any]:
    """`{"token", "logprob", "bytes", "top_logprobs": [...]}` (Chat Completions, Responses)."""

    def one(token: str, value: float) -> dict[str, Any]:
        item: dict[str, Any] = {"token": token, "logprob": value}
        if with_bytes:
            item["bytes"] = list(token.encode())
        return item

    return {**one(entry.token, entry.logprob), "top_logprobs": [one(t, v) for t, v in entry.top]}


def chat_logprobs(choice: Choice, start: int = 0, stop: int | None = None) -> dict[str, Any] | None:
    """A choice's `logprobs` object (`{"content": [...], "refusal": null}`), for pieces [start, stop)."""
    if choice.logprobs is None:
        return None
    return {"content": [logprob_entry(e) for e in choice.logprobs[start:stop]], "refusal": None}


def usage(plan: ResponsePlan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.completion_tokens,
        "total_tokens": plan.total_tokens,
        "prompt_tokens_details": {"cached_tokens": plan.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class OpenAIEndpoint:
    """What every OpenAI/Azure endpoint shares: the provider name, the request preamble and errors."""

    operation = ""

    def __init__(self, provider: str = "openai") -> None:
        self.provider = provider

    @property
    def azure(self) -> bool:
        return self.provider == "azure"

    def body_and_model(self, facts: HttpRequestFacts) -> tuple[dict[str, Any], str]:
        """The JSON body and the model (Azure: the deployment when the body names none)."""
        require_api_version(facts)
        doc = parse_json_object(facts.body)
        model = fields.string(doc, "model") or facts.route.get("deployment")
        if not model:
            raise ApiError(ErrorKind.INVALID_REQUEST, "Missing required parameter: 'model'.", param="model")
        return doc, model

    def headers(self, plan: ResponsePlan) -> dict[str, str]:
        return base_headers("req_" + plan.response_id, plan.timing.ttft_s * 1000, azure=self.azure)

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        return error_answer(error, "req_" + facts.request_id, azure=self.azure)


def is_azure(facts: HttpRequestFacts) -> bool:
    return facts.path.startswith("/openai/")


def require_api_version(facts: HttpRequestFacts) -> None:
    """Azure's deployment routes need `?api-version=`."""
    if facts.path.startswith("/openai/deployments/") and not facts.query.get("api-version"):
        raise ApiError(
            ErrorKind.NOT_FOUND,
            "Resource not found. The 'api-version' query parameter is required.",
            param="api-version",
        )
