"""Parsing Gemini (`generativelanguage.googleapis.com`) request bodies into GenerationRequests.

The REST API parses bodies as protobuf JSON, which accepts both the camelCase names the SDK
sends (`systemInstruction`, `generationConfig`) and the snake_case names of the REST docs'
curl examples (`system_instruction`, `generation_config`); so does this module.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from llmsim.providers import limits
from llmsim.providers.base import ApiError, ErrorKind, HttpRequestFacts, parse_json_object
from llmsim.simulation.request import (
    GenerationRequest,
    Message,
    Operation,
    PastToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)

PROVIDER = "gemini"

_PATH = re.compile(r"^/(?P<version>v1|v1beta|v1alpha)/models/(?P<model>[^/:]+):(?P<method>\w+)$")


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def get(doc: dict[str, Any], name: str) -> Any:
    """A field by its camelCase name, or by the snake_case spelling protobuf JSON also accepts."""
    if name in doc:
        return doc[name]
    return doc.get(_snake(name))


def invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(ErrorKind.INVALID_REQUEST, message, param=param)


def _type_error(where: str, expected: str, value: Any) -> ApiError:
    shown = json.dumps(value)[:60]
    return invalid(f"Invalid value at '{where}' ({expected}), {shown}", where)


def _obj(doc: dict[str, Any], name: str, where: str) -> dict[str, Any] | None:
    value = get(doc, name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _type_error(
            where,
            "type.googleapis.com/google.ai.generativelanguage.v1beta." + name[0].upper() + name[1:],
            value,
        )
    return value


def _list(doc: dict[str, Any], name: str, where: str) -> list[Any]:
    value = get(doc, name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(where, "repeated", value)
    return value


def model_of(facts: HttpRequestFacts) -> str:
    """The model of the route (`/v1beta/models/{model}:{method}`), without a `models/` prefix."""
    model = facts.route.get("model")
    if model is None:
        found = _PATH.match(facts.path)
        model = found.group("model") if found else ""
    model = model.removeprefix("models/")
    if not model:
        raise ApiError(ErrorKind.NOT_FOUND, f"Method not found: {facts.path}")
    return model


def parts_text(parts: Any, where: str) -> str:
    """Flatten Gemini `parts` (text, functionCall, functionResponse, inline data...) to text."""
    if not isinstance(parts, list):
        raise _type_error(where, "repeated Part", parts)
    texts: list[str] = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise _type_error(
                f"{where}[{i}]", "type.googleapis.com/google.ai.generativelanguage.v1beta.Part", part
            )
        text = part.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise _type_error(f"{where}[{i}].text", "TYPE_STRING", text)
            texts.append(text)
            continue
        call = get(part, "functionCall")
        if isinstance(call, dict):
            texts.append(json.dumps({"name": call.get("name"), "args": call.get("args") or {}}))
            continue
        reply = get(part, "functionResponse")
        if isinstance(reply, dict):
            texts.append(json.dumps(reply.get("response") or {}))
    return "".join(texts)


def content_text(content: Any, where: str) -> tuple[str, str]:
    """(role, text) of one `Content`."""
    if not isinstance(content, dict):
        raise _type_error(where, "type.googleapis.com/google.ai.generativelanguage.v1beta.Content", content)
    role = content.get("role") or "user"
    if not isinstance(role, str):
        raise _type_error(f"{where}.role", "TYPE_STRING", role)
    if role not in ("user", "model", "function", "tool", "system"):
        raise invalid(
            f"Please use a valid role: user, model. (got {role!r} at {where}.role)", f"{where}.role"
        )
    return role, parts_text(content.get("parts") or [], f"{where}.parts")


def _function_parts(content: dict[str, Any]) -> tuple[tuple[PastToolCall, ...], tuple[ToolResult, ...]]:
    """The `functionCall` and `functionResponse` parts of a (validated) Content."""
    calls: list[PastToolCall] = []
    results: list[ToolResult] = []
    for part in content.get("parts") or []:
        call = get(part, "functionCall")
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            call_id = call.get("id")
            calls.append(PastToolCall(call["name"], json.dumps(call.get("args") or {}),
                                      call_id if isinstance(call_id, str) else None))  # fmt: skip
        reply = get(part, "functionResponse")
        if isinstance(reply, dict):
            name, call_id = reply.get("name"), reply.get("id")
            results.append(ToolResult(json.dumps(reply.get("response") or {}),
                                      name=name if isinstance(name, str) else "",
                                      call_id=call_id if isinstance(call_id, str) else None))  # fmt: skip
    return tuple(calls), tuple(results)


def _contents(doc: dict[str, Any], request_name: str) -> list[Message]:
    raw = doc.get("contents")
    if raw is None or raw == []:
        raise invalid(f"* {request_name}.contents: contents is not specified\n", "contents")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise _type_error("contents", "repeated Content", raw)
    out: list[Message] = []
    for i, content in enumerate(raw):
        role, text = content_text(content, f"contents[{i}]")
        calls, results = _function_parts(content)
        out.append(Message(role="assistant" if role == "model" else "user", text=text,
                           tool_calls=calls, tool_results=results))  # fmt: skip
    return out


def _system(doc: dict[str, Any]) -> list[Message]:
    raw = get(doc, "systemInstruction")
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message("system", raw)]
    _, text = content_text(raw, "system_instruction")
    return [Message("system", text)]


def _tools(doc: dict[str, Any]) -> tuple[ToolSpec, ...]:
    tools: list[ToolSpec] = []
    for i, tool in enumerate(_list(doc, "tools", "tools")):
        if not isinstance(tool, dict):
            raise _type_error(
                f"tools[{i}]", "type.googleapis.com/google.ai.generativelanguage.v1beta.Tool", tool
            )
        for j, decl in enumerate(_list(tool, "functionDeclarations", f"tools[{i}].function_declarations")):
            where = f"tools[{i}].function_declarations[{j}]"
            if not isinstance(decl, dict):
                raise _type_error(where, "FunctionDeclaration", decl)
            name = decl.get("name")
            if not isinstance(name, str) or not name:
                raise invalid(
                    f"* GenerateContentRequest.{where}.name: Name cannot be empty.\n", f"{where}.name"
                )
            schema = (
                get(decl, "parametersJsonSchema")
                or decl.get("parameters")
                or {"type": "object", "properties": {}}
            )
            if not isinstance(schema, dict):
                raise _type_error(f"{where}.parameters", "Schema", schema)
            description = decl.get("description")
            tools.append(ToolSpec(name, description if isinstance(description, str) else "", schema))
    return tuple(tools)


def _tool_choice(doc: dict[str, Any], tools: tuple[ToolSpec, ...]) -> tuple[tuple[ToolSpec, ...], ToolChoice]:
    config = _obj(doc, "toolConfig", "tool_config")
    calling = _obj(config, "functionCallingConfig", "tool_config.function_calling_config") if config else None
    if not calling:
        return tools, ToolChoice("auto")
    mode = str(calling.get("mode") or "AUTO").upper()
    allowed = get(calling, "allowedFunctionNames") or []
    if not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed):
        raise _type_error(
            "tool_config.function_calling_config.allowed_function_names", "repeated TYPE_STRING", allowed
        )
    if mode == "NONE":
        return tools, ToolChoice("none")
    if mode in ("AUTO", "MODE_UNSPECIFIED", "VALIDATED"):
        return tools, ToolChoice("auto")
    if mode != "ANY":
        where = "tool_config.function_calling_config.mode"
        enum = "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode"
        raise invalid(f"Invalid value at '{where}' ({enum}), \"{mode}\"", where)
    if not tools:
        raise invalid("Function calling config is set without function_declarations.", "tool_config")
    if allowed:
        unknown = [n for n in allowed if n not in {t.name for t in tools}]
        if unknown:
            raise invalid(
                f"allowed_function_names contains a function that is not declared: {unknown[0]}",
                "tool_config",
            )
        tools = tuple(t for t in tools if t.name in allowed)
        if len(tools) == 1:
            return tools, ToolChoice("named", tools[0].name)
    return tools, ToolChoice("required")


def _int(doc: dict[str, Any], name: str, where: str, minimum: int, maximum: int | None = None) -> int | None:
    value = get(doc, name)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # protobuf JSON accepts int32 as strings
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(where, "TYPE_INT32", value)
    if value < minimum:
        raise invalid(f"* GenerateContentRequest.{where}: must be >= {minimum}\n", where)
    if maximum is not None and value > maximum:
        raise invalid(f"* GenerateContentRequest.{where}: must be <= {maximum}\n", where)
    return value


def generation_request(
    doc: dict[str, Any],
    model: str,
    *,
    stream: bool,
    operation: Operation = "chat",
    request_name: str = "GenerateContentRequest",
) -> GenerationRequest:
    """A GenerateContentRequest body (also the `generateContentRequest` of countTokens)."""
    messages = _system(doc) + _contents(doc, request_name)
    tools, choice = _tool_choice(doc, _tools(doc))
    config = _obj(doc, "generationConfig", "generation_config") or {}
    stops = _list(config, "stopSequences", "generation_config.stop_sequences")
    if not all(isinstance(s, str) for s in stops):
        raise _type_error("generation_config.stop_sequences", "repeated TYPE_STRING", stops)
    if len(stops) > 5:
        raise invalid(
            "* GenerateContentRequest.generation_config.stop_sequences: "
            "at most 5 stop sequences are allowed\n"
        )
    mime = get(config, "responseMimeType")
    schema = get(config, "responseJsonSchema") or get(config, "responseSchema")
    if schema is not None and not isinstance(schema, dict):
        raise _type_error("generation_config.response_schema", "Schema", schema)
    json_out = mime == "application/json"
    if schema is not None and not json_out:
        raise invalid(
            "* GenerateContentRequest.generation_config.response_mime_type: "
            "responseSchema requires responseMimeType to be application/json\n",
            "generation_config.response_mime_type",
        )
    return GenerationRequest(
        provider=PROVIDER,
        operation=operation,
        model=model,
        messages=tuple(messages),
        max_tokens=_int(config, "maxOutputTokens", "generation_config.max_output_tokens", 1),
        stop=tuple(stops),
        stream=stream,
        n=_int(config, "candidateCount", "generation_config.candidate_count", 1, limits.GEMINI_MAX_CANDIDATES)
        or 1,
        tools=tools,
        tool_choice=choice,
        json_schema=dict(schema) if json_out and schema else None,
        json_mode=json_out and not schema,
        seed=_int(config, "seed", "generation_config.seed", -(1 << 31)),
        logprobs=_logprobs(config),
    )


def _logprobs(config: dict[str, Any]) -> int | None:
    """`responseLogprobs: true` (+ `logprobs`: top candidates per step, 0..20)."""
    want = get(config, "responseLogprobs")
    if want is not None and not isinstance(want, bool):
        raise _type_error("generation_config.response_logprobs", "TYPE_BOOL", want)
    top = _int(config, "logprobs", "generation_config.logprobs", 0)
    if top is not None and top > 20:
        raise invalid("* GenerateContentRequest.generation_config.logprobs: must be <= 20\n",
                      "generation_config.logprobs")  # fmt: skip
    if top is not None and not want:
        raise invalid("logprobs is only valid if response_logprobs is true.", "generation_config.logprobs")
    return (top or 0) if want else None


def parse_generate(facts: HttpRequestFacts, *, stream: bool) -> GenerationRequest:
    doc = parse_json_object(facts.body)
    request = generation_request(doc, model_of(facts), stream=stream)
    sse = facts.query.get("alt", "").lower() == "sse"
    return _with_extra(request, facts, sse=sse)


def parse_count_tokens(facts: HttpRequestFacts) -> GenerationRequest:
    doc = parse_json_object(facts.body)
    model = model_of(facts)
    inner = _obj(doc, "generateContentRequest", "generate_content_request")
    if inner is not None:
        if doc.get("contents") is not None:
            raise invalid("contents and generate_content_request are mutually exclusive.", "contents")
        request = generation_request(inner, model, stream=False, operation="count_tokens")
    else:
        request = generation_request(
            doc, model, stream=False, operation="count_tokens", request_name="CountTokensRequest"
        )
    return _with_extra(request, facts)


def _embed_text(item: dict[str, Any], where: str) -> str:
    content = item.get("content")
    if content is None:
        raise invalid(f"* {where}.content: content is not specified\n", f"{where}.content")
    return content_text(content, f"{where}.content")[1]


def _dimensions(item: dict[str, Any], where: str) -> int | None:
    config = _obj(item, "embedContentConfig", f"{where}.embed_content_config") or {}
    value = get(item, "outputDimensionality")
    if value is None:
        value = get(config, "outputDimensionality")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(
            f"* {where}.output_dimensionality: must be a positive integer\n", f"{where}.output_dimensionality"
        )
    if value > limits.GEMINI_MAX_EMBEDDING_DIMENSIONS:
        raise invalid(
            f"* {where}.output_dimensionality: must be <= {limits.GEMINI_MAX_EMBEDDING_DIMENSIONS}\n",
            f"{where}.output_dimensionality",
        )
    return value


def parse_embed(facts: HttpRequestFacts, *, batch: bool) -> GenerationRequest:
    doc = parse_json_object(facts.body)
    model = model_of(facts)
    if batch:
        raw = doc.get("requests")
        if not isinstance(raw, list) or not raw:
            raise invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n", "requests")
        if len(raw) > limits.GEMINI_MAX_BATCH_EMBEDDINGS:
            raise invalid(
                f"* BatchEmbedContentsRequest.requests: at most {limits.GEMINI_MAX_BATCH_EMBEDDINGS} "
                "requests can be in one batch\n",
                "requests",
            )
        items = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise _type_error(f"requests[{i}]", "EmbedContentRequest", item)
            items.append(item)
        where = [f"BatchEmbedContentsRequest.requests[{i}]" for i in range(len(items))]
    else:
        items, where = [doc], ["EmbedContentRequest"]
    texts = tuple(_embed_text(item, w) for item, w in zip(items, where, strict=True))
    dims = {_dimensions(item, w) for item, w in zip(items, where, strict=True)}
    if len(dims) > 1:
        raise invalid("All requests of a batch must use the same output_dimensionality.", "requests")
    request = GenerationRequest(
        provider=PROVIDER, operation="embeddings", model=model, inputs=texts, dimensions=dims.pop()
    )
    return _with_extra(request, facts, batch=batch)


def _with_extra(request: GenerationRequest, facts: HttpRequestFacts, **extra: Any) -> GenerationRequest:
    version = facts.route.get("version") or (
        facts.path.split("/")[1] if facts.path.count("/") >= 2 else "v1beta"
    )
    return dataclasses.replace(request, extra={**request.extra, "version": version, **extra})
