"""Parsing Ollama request bodies (`/api/chat`, `/api/generate`, `/api/embed`).

Messages follow Ollama's Go wording (`model is required`, `json: cannot unmarshal string into
Go struct field ChatRequest.messages of type []api.Message`). `stream` defaults to true, an
empty `tools` list is not a tools request, and `options.num_predict` < 0 means no limit.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from llmsim.providers import json_input, limits
from llmsim.providers.base import ApiError, ErrorKind, HttpRequestFacts, json_model_hint
from llmsim.simulation.request import (
    GenerationRequest,
    Message,
    Operation,
    PastToolCall,
    ToolResult,
    ToolSpec,
)

PROVIDER = "ollama"

_GO_TYPES = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}


def _go_type_error(value: Any, struct: str, field: str, go_type: str) -> ApiError:
    kind = _GO_TYPES.get(type(value), "null")
    return ApiError(
        ErrorKind.INVALID_REQUEST,
        f"json: cannot unmarshal {kind} into Go struct field {struct}.{field} of type {go_type}",
        param=field,
    )


def _body(facts: HttpRequestFacts) -> dict[str, Any]:
    if not facts.body.strip():
        raise ApiError(ErrorKind.INVALID_REQUEST, "missing request body")
    try:
        doc = json_input.decode(facts.body)
    except json_input.JsonInputError as exc:
        kind = ErrorKind.TOO_LARGE if exc.too_large else ErrorKind.INVALID_REQUEST
        raise ApiError(kind, f"invalid character in request body: {exc.message}") from None
    if not isinstance(doc, dict):
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"json: cannot unmarshal {_GO_TYPES.get(type(doc), 'null')} into Go value of type api.Request",
        )
    return doc


def _string(doc: dict[str, Any], key: str, struct: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise _go_type_error(value, struct, key, "string")
    return value


def _model(doc: dict[str, Any], struct: str) -> str:
    model = _string(doc, "model", struct)
    if not model:
        raise ApiError(ErrorKind.INVALID_REQUEST, "model is required", param="model")
    return model


def _stream(doc: dict[str, Any], struct: str) -> bool:
    value = doc.get("stream")
    if value is None:
        return True
    if not isinstance(value, bool):
        raise _go_type_error(value, struct, "stream", "bool")
    return value


def _options(doc: dict[str, Any], struct: str) -> tuple[int | None, tuple[str, ...], int | None]:
    """(num_predict, stop, seed) from `options`; a negative num_predict means no limit."""
    options = doc.get("options")
    if options is None:
        return None, (), None
    if not isinstance(options, dict):
        raise _go_type_error(options, struct, "options", "map[string]interface {}")
    values: list[int | None] = []
    for key in ("num_predict", "seed"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ApiError(
                ErrorKind.INVALID_REQUEST, f"option {key!r} must be of type integer", param=f"options.{key}"
            )
        values.append(int(value) if value is not None else None)
    stop = options.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = tuple(stop)
    else:
        raise ApiError(ErrorKind.INVALID_REQUEST, "option 'stop' must be of type array", param="options.stop")
    num_predict = values[0] if values[0] is not None and values[0] >= 0 else None
    if num_predict == 0:
        num_predict = None
    return num_predict, stops, values[1]


def _format(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    value = doc.get("format")
    if value in (None, ""):
        return None, False
    if value == "json":
        return None, True
    if isinstance(value, dict):
        return dict(value), False
    raise ApiError(ErrorKind.INVALID_REQUEST, f"invalid format: {json.dumps(value)[:40]}", param="format")


def _tools(doc: dict[str, Any]) -> tuple[ToolSpec, ...]:
    raw = doc.get("tools")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _go_type_error(raw, "ChatRequest", "tools", "api.Tools")
    tools: list[ToolSpec] = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _go_type_error(item, "ChatRequest", "tools", "api.Tool")
        params = function.get("parameters")
        description = function.get("description")
        tools.append(
            ToolSpec(
                name=function["name"],
                description=description if isinstance(description, str) else "",
                parameters=params if isinstance(params, dict) else {"type": "object", "properties": {}},
            )
        )
    return tuple(tools)


def _chat_messages(doc: dict[str, Any]) -> tuple[Message, ...]:
    raw = doc.get("messages")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _go_type_error(raw, "ChatRequest", "messages", "[]api.Message")
    out: list[Message] = []
    for item in raw:
        if not isinstance(item, dict):
            raise _go_type_error(item, "ChatRequest", "messages", "api.Message")
        role = _string(item, "role", "Message") or ""
        text = _string(item, "content", "Message") or ""
        raw_calls = item.get("tool_calls")
        calls: tuple[PastToolCall, ...] = ()
        if isinstance(raw_calls, list) and raw_calls:
            text += json.dumps(raw_calls)
            calls = _past_calls(raw_calls)
        results: tuple[ToolResult, ...] = ()
        if role == "tool":
            results = (ToolResult(text, name=_string(item, "tool_name", "Message") or ""),)
        out.append(Message(role=role, text=text, tool_calls=calls, tool_results=results))
    return tuple(out)


def _past_calls(raw: list[Any]) -> tuple[PastToolCall, ...]:
    """An assistant message's `tool_calls` (`{"function": {"name", "arguments"}}`, no ids)."""
    calls: list[PastToolCall] = []
    for call in raw:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            calls.append(PastToolCall(function["name"], json.dumps(function.get("arguments") or {})))
    return tuple(calls)


def _generation(
    doc: dict[str, Any], struct: str, operation: Operation, messages: tuple[Message, ...]
) -> GenerationRequest:
    num_predict, stop, seed = _options(doc, struct)
    schema, json_mode = _format(doc)
    return GenerationRequest(
        provider=PROVIDER,
        operation=operation,
        model=_model(doc, struct),
        messages=messages,
        max_tokens=num_predict,
        stop=stop,
        stream=_stream(doc, struct),
        tools=_tools(doc) if operation == "chat" else (),
        json_schema=schema,
        json_mode=json_mode,
        seed=seed,
        logprobs=_logprobs(doc, struct),
    )


def _logprobs(doc: dict[str, Any], struct: str) -> int | None:
    """`logprobs: true` (+ `top_logprobs`, 0..20): None when not asked for."""
    want = doc.get("logprobs")
    if want is not None and not isinstance(want, bool):
        raise _go_type_error(want, struct, "logprobs", "bool")
    top = doc.get("top_logprobs")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int)):
        raise _go_type_error(top, struct, "top_logprobs", "int")
    if top is not None and not 0 <= top <= 20:
        raise ApiError(
            ErrorKind.INVALID_REQUEST, "top_logprobs must be between 0 and 20", param="top_logprobs"
        )
    return (top or 0) if want else None


def parse_chat(facts: HttpRequestFacts) -> GenerationRequest:
    doc = _body(facts)
    return _generation(doc, "ChatRequest", "chat", _chat_messages(doc))


def parse_generate(facts: HttpRequestFacts) -> GenerationRequest:
    doc = _body(facts)
    messages = []
    system = _string(doc, "system", "GenerateRequest")
    if system:
        messages.append(Message("system", system))
    messages.append(Message("user", _string(doc, "prompt", "GenerateRequest") or ""))
    request = _generation(doc, "GenerateRequest", "completion", tuple(messages))
    context = doc.get("context")
    if context is not None and (
        not isinstance(context, list)
        or not all(isinstance(t, int) and not isinstance(t, bool) for t in context)
    ):
        raise _go_type_error(context, "GenerateRequest", "context", "[]int")
    raw = doc.get("raw")
    if raw is not None and not isinstance(raw, bool):
        raise _go_type_error(raw, "GenerateRequest", "raw", "bool")
    return dataclasses.replace(request, context_tokens=tuple(context or ()), extra={"raw": bool(raw)})


def parse_embed(facts: HttpRequestFacts) -> GenerationRequest:
    doc = _body(facts)
    raw = doc.get("input")
    if isinstance(raw, str):
        inputs: tuple[str, ...] = (raw,)
    elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        inputs = tuple(raw)
    elif raw is None:
        inputs = ()
    else:
        raise ApiError(ErrorKind.INVALID_REQUEST, "invalid input type", param="input")
    if len(inputs) > limits.OLLAMA_MAX_EMBED_INPUTS:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"too many inputs: {len(inputs)} (llmsim accepts at most {limits.OLLAMA_MAX_EMBED_INPUTS})",
            param="input",
        )
    dims = doc.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        raise ApiError(ErrorKind.INVALID_REQUEST, "dimensions must be a positive integer", param="dimensions")
    if dims is not None and dims > limits.OLLAMA_MAX_EMBED_DIMENSIONS:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"dimensions {dims} is too large (llmsim accepts at most {limits.OLLAMA_MAX_EMBED_DIMENSIONS})",
            param="dimensions",
        )
    return GenerationRequest(
        provider=PROVIDER,
        operation="embeddings",
        model=_model(doc, "EmbedRequest"),
        inputs=inputs,
        dimensions=dims,
    )


def model_hint(facts: HttpRequestFacts) -> str | None:
    """The `model` of a JSON body, if it has one (for wording errors raised after parsing)."""
    return json_model_hint(facts.body)
