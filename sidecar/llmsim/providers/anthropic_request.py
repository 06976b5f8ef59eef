"""Parsing Anthropic Messages (and count_tokens) request bodies into GenerationRequests.

Validation messages follow api.anthropic.com's pydantic-style wording (`max_tokens: Field
required`, `messages.0.role: Input should be 'user' or 'assistant'`), naming the field path.
"""

from __future__ import annotations

import json
from typing import Any

from llmsim.providers.base import ApiError, ErrorKind, HttpRequestFacts, json_model_hint, parse_json_object
from llmsim.simulation.request import (
    GenerationRequest,
    Message,
    PastToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)

PROVIDER = "anthropic"


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
    if not raw:
        raise _bad("messages", "at least one message is required")
    out: list[Message] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _bad(f"messages.{i}", f"Input should be a valid dictionary, got {_kind(item)}")
        role = item.get("role")
        if role is None:
            raise _bad(f"messages.{i}.role", "Field required")
        if role not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role", "Input should be 'user' or 'assistant'")
        content = item.get("content")
        text = _content_text(content, f"messages.{i}.content")
        calls, results = _tool_blocks(content) if isinstance(content, list) else ((), ())
        out.append(Message(role=role, text=text, tool_calls=calls, tool_results=results))
    return out


def _tool_blocks(blocks: list[Any]) -> tuple[tuple[PastToolCall, ...], tuple[ToolResult, ...]]:
    """The `tool_use` and `tool_result` blocks of a (validated) content list."""
    calls: list[PastToolCall] = []
    results: list[ToolResult] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "tool_use":
            call_id = block.get("id")
            calls.append(PastToolCall(block["name"], json.dumps(block.get("input") or {}),
                                      call_id if isinstance(call_id, str) else None))  # fmt: skip
        elif kind == "tool_result":
            call_id = block.get("tool_use_id")
            inner = block.get("content")
            text = inner if isinstance(inner, str) else _content_text(inner, "tool_result") if inner else ""
            results.append(ToolResult(text, call_id=call_id if isinstance(call_id, str) else None))
    return tuple(calls), tuple(results)


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
    disable = raw.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise _bad("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")
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


def _marked(value: Any) -> bool:
    """Whether a block (or any block of a content list) carries `cache_control`."""
    if isinstance(value, dict):
        return isinstance(value.get("cache_control"), dict)
    return isinstance(value, list) and any(_marked(b) for b in value)


def _cache_marks(doc: dict[str, Any], count: int, has_system: bool) -> tuple[int, ...]:
    """Indexes of the messages (system first, as `messages` holds them) up to which the client
    asked for caching; -1 for the tools. A top-level `cache_control` marks the last message."""
    marks: list[int] = []
    if _marked(doc.get("tools")):
        marks.append(-1)
    if has_system and _marked(doc.get("system")):
        marks.append(0)
    offset = 1 if has_system else 0
    for i, item in enumerate(doc.get("messages") or []):
        if isinstance(item, dict) and _marked(item.get("content")):
            marks.append(i + offset)
    if isinstance(doc.get("cache_control"), dict) and count:
        marks.append(count - 1)
    return tuple(sorted(set(marks)))


def _parallel_disabled(doc: dict[str, Any]) -> bool:
    """`tool_choice.disable_parallel_tool_use: true`: at most one tool call (validated by `_tool_choice`)."""
    raw = doc.get("tool_choice")
    return isinstance(raw, dict) and raw.get("disable_parallel_tool_use") is True


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
    marks = _cache_marks(doc, len(messages), bool(_system(doc)))
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
        parallel_tool_calls=not _parallel_disabled(doc),
        json_schema=_json_schema(doc),
        cache_marks=marks,
        extra={"user_id": user} if isinstance(user, str) else {},
    )


def model_hint(facts: HttpRequestFacts) -> str | None:
    """The `model` of a JSON body, if it has one (for wording errors raised after parsing)."""
    return json_model_hint(facts.body)
