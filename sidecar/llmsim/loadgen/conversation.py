"""Multi-turn conversations in each provider's wire format, from the client side (pure).

A `Conversation` is the provider-neutral history a workflow sends: user messages, assistant
replies (text and tool calls) and tool results. `apply` renders it into a request body built by
`wire.build_call`; `parse_body` / `parse_events` read the assistant's reply (text and tool calls,
with their ids) back out of a whole body or a stream's events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmsim.api.scenario import TargetProvider


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One entry of the history: a user message, an assistant reply, or one tool result."""

    role: str
    """`user`, `assistant` or `tool`."""
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    """The assistant's calls (role `assistant`)."""
    tool_call: ToolCall | None = None
    """The call a tool result answers (role `tool`)."""
    result: dict[str, Any] = field(default_factory=dict)
    """The tool result (role `tool`)."""


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Conversation:
    messages: tuple[Message, ...]
    tools: tuple[ToolDef, ...] = ()
    tool_choice: str = "auto"
    """`auto` or `required`."""
    system: str | None = None


def apply(provider: TargetProvider, body: dict[str, Any], conv: Conversation) -> None:
    """Replace the single-turn messages and tools of `body` with the conversation's."""
    match provider:
        case TargetProvider.OPENAI | TargetProvider.AZURE:
            system = [{"role": "system", "content": conv.system}] if conv.system else []
            body["messages"] = system + [m for msg in conv.messages for m in _openai(msg)]
            _openai_tools(body, conv)
        case TargetProvider.OLLAMA:
            system = [{"role": "system", "content": conv.system}] if conv.system else []
            body["messages"] = system + [_ollama(msg) for msg in conv.messages]
            body.pop("tools", None)
            if conv.tools:
                body["tools"] = [_function(t) for t in conv.tools]
        case TargetProvider.ANTHROPIC:
            body["messages"] = _anthropic(conv.messages)
            body.pop("system", None)
            if conv.system:
                body["system"] = conv.system
            body.pop("tools", None)
            body.pop("tool_choice", None)
            if conv.tools:
                body["tools"] = [
                    {"name": t.name, "description": t.description, "input_schema": t.parameters}
                    for t in conv.tools
                ]
                body["tool_choice"] = {"type": "any" if conv.tool_choice == "required" else "auto"}
        case TargetProvider.GEMINI:
            body["contents"] = [_gemini(msg) for msg in conv.messages]
            body.pop("systemInstruction", None)
            if conv.system:
                body["systemInstruction"] = {"parts": [{"text": conv.system}]}
            body.pop("tools", None)
            body.pop("toolConfig", None)
            if conv.tools:
                decls = [
                    {"name": t.name, "description": t.description, "parameters": t.parameters}
                    for t in conv.tools
                ]
                body["tools"] = [{"functionDeclarations": decls}]
                mode = "ANY" if conv.tool_choice == "required" else "AUTO"
                body["toolConfig"] = {"functionCallingConfig": {"mode": mode}}


def _function(t: ToolDef) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
    }


def _openai_tools(body: dict[str, Any], conv: Conversation) -> None:
    body.pop("tools", None)
    body.pop("tool_choice", None)
    if conv.tools:
        body["tools"] = [_function(t) for t in conv.tools]
        body["tool_choice"] = conv.tool_choice


def _openai(msg: Message) -> list[dict[str, Any]]:
    if msg.role == "tool":
        assert msg.tool_call is not None
        return [{"role": "tool", "tool_call_id": msg.tool_call.id, "content": json.dumps(msg.result)}]
    if msg.role == "assistant" and msg.tool_calls:
        calls = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in msg.tool_calls
        ]
        return [{"role": "assistant", "content": msg.text or None, "tool_calls": calls}]
    return [{"role": msg.role, "content": msg.text}]


def _ollama(msg: Message) -> dict[str, Any]:
    if msg.role == "tool":
        assert msg.tool_call is not None
        return {"role": "tool", "content": json.dumps(msg.result), "tool_name": msg.tool_call.name}
    out: dict[str, Any] = {"role": msg.role, "content": msg.text}
    if msg.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in msg.tool_calls]
    return out


def _anthropic(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Anthropic alternates user and assistant; tool results are user content blocks, so
    consecutive results (and a user message after them) merge into one user message."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": msg.text}] if msg.text else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in msg.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks or [{"type": "text", "text": ""}]})
            continue
        if msg.role == "tool":
            assert msg.tool_call is not None
            block = {
                "type": "tool_result",
                "tool_use_id": msg.tool_call.id,
                "content": json.dumps(msg.result),
            }
        else:
            block = {"type": "text", "text": msg.text}
        if out and out[-1]["role"] == "user":
            out[-1]["content"].append(block)
        else:
            out.append({"role": "user", "content": [block]})
    return out


def _gemini(msg: Message) -> dict[str, Any]:
    if msg.role == "tool":
        assert msg.tool_call is not None
        return {
            "role": "user",
            "parts": [{"functionResponse": {"name": msg.tool_call.name, "response": msg.result}}],
        }
    if msg.role == "assistant":
        parts: list[dict[str, Any]] = [{"text": msg.text}] if msg.text else []
        parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in msg.tool_calls]
        return {"role": "model", "parts": parts or [{"text": ""}]}
    return {"role": "user", "parts": [{"text": msg.text}]}


# --- replies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()


def _args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except json.JSONDecodeError:
        return {"_unparsed": raw}
    return value if isinstance(value, dict) else {"value": value}


def _call_id(index: int, raw: Any) -> str:
    return str(raw) if raw else f"call_{index}"


def parse_body(provider: TargetProvider, doc: dict[str, Any]) -> Reply:
    """The assistant's reply in a successful non-streaming body (already JSON-decoded)."""
    match provider:
        case TargetProvider.OPENAI | TargetProvider.AZURE:
            message = doc["choices"][0]["message"]
            calls = tuple(
                ToolCall(
                    _call_id(i, c.get("id")), c["function"]["name"], _args(c["function"].get("arguments"))
                )
                for i, c in enumerate(message.get("tool_calls") or [])
            )
            return Reply(message.get("content") or "", calls)
        case TargetProvider.ANTHROPIC:
            text = "".join(b.get("text") or "" for b in doc["content"] if b.get("type") == "text")
            calls = tuple(
                ToolCall(_call_id(i, b.get("id")), b["name"], _args(b.get("input")))
                for i, b in enumerate(doc["content"])
                if b.get("type") == "tool_use"
            )
            return Reply(text, calls)
        case TargetProvider.GEMINI:
            return _gemini_reply([doc])
        case TargetProvider.OLLAMA:
            message = doc["message"]
            calls = tuple(
                ToolCall(f"call_{i}", c["function"]["name"], _args(c["function"].get("arguments")))
                for i, c in enumerate(message.get("tool_calls") or [])
            )
            return Reply(message.get("content") or "", calls)
    raise ValueError(f"unknown provider {provider}")  # pragma: no cover


def _gemini_reply(docs: list[dict[str, Any]]) -> Reply:
    text = ""
    calls: list[ToolCall] = []
    for doc in docs:
        for cand in doc.get("candidates") or []:
            for part in (cand.get("content") or {}).get("parts") or []:
                text += part.get("text") or ""
                if "functionCall" in part:
                    fc = part["functionCall"]
                    calls.append(
                        ToolCall(_call_id(len(calls), fc.get("id")), fc["name"], _args(fc.get("args")))
                    )
    return Reply(text, tuple(calls))


def parse_events(provider: TargetProvider, events: list[tuple[str, str]]) -> Reply:
    """The assistant's reply assembled from a complete stream's events (name, data)."""
    docs: list[tuple[str, dict[str, Any]]] = []
    for name, data in events:
        if data.strip() in ("", "[DONE]"):
            continue
        doc = json.loads(data)
        if isinstance(doc, dict):
            docs.append((name, doc))
    match provider:
        case TargetProvider.OPENAI | TargetProvider.AZURE:
            text = ""
            slots: dict[int, dict[str, Any]] = {}
            for _, doc in docs:
                for choice in doc.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text += delta.get("content") or ""
                    for part in delta.get("tool_calls") or []:
                        slot = slots.setdefault(int(part.get("index", 0)), {"id": "", "name": "", "args": ""})
                        fn = part.get("function") or {}
                        slot["id"] = part.get("id") or slot["id"]
                        slot["name"] = fn.get("name") or slot["name"]
                        slot["args"] += fn.get("arguments") or ""
            calls = tuple(
                ToolCall(_call_id(i, s["id"]), s["name"], _args(s["args"])) for i, s in sorted(slots.items())
            )
            return Reply(text, calls)
        case TargetProvider.ANTHROPIC:
            text = ""
            blocks: dict[int, dict[str, Any]] = {}
            for name, doc in docs:
                kind = doc.get("type") or name
                if (
                    kind == "content_block_start"
                    and (doc.get("content_block") or {}).get("type") == "tool_use"
                ):
                    block = doc["content_block"]
                    blocks[int(doc.get("index", 0))] = {
                        "id": block.get("id"),
                        "name": block["name"],
                        "json": "",
                    }
                elif kind == "content_block_delta":
                    delta = doc.get("delta") or {}
                    if delta.get("type") == "input_json_delta":
                        blocks[int(doc.get("index", 0))]["json"] += delta.get("partial_json") or ""
                    else:
                        text += delta.get("text") or ""
            calls = tuple(
                ToolCall(_call_id(i, b["id"]), b["name"], _args(b["json"])) for i, b in sorted(blocks.items())
            )
            return Reply(text, calls)
        case TargetProvider.GEMINI:
            return _gemini_reply([doc for _, doc in docs])
        case TargetProvider.OLLAMA:
            text = ""
            found: list[ToolCall] = []
            for _, doc in docs:
                message = doc.get("message") or {}
                text += message.get("content") or ""
                for c in message.get("tool_calls") or []:
                    found.append(
                        ToolCall(
                            f"call_{len(found)}", c["function"]["name"], _args(c["function"].get("arguments"))
                        )
                    )
            return Reply(text, tuple(found))
    raise ValueError(f"unknown provider {provider}")  # pragma: no cover
