"""Provider wire formats from the client side (pure): build requests, decode streams, parse bodies
and classify errors. The HTTP shell in `client.py` feeds bytes in and timestamps what comes out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from llmsim.api.scenario import Target, TargetProvider
from llmsim.loadgen import conversation
from llmsim.loadgen.requestmix import PlannedRequest
from llmsim.providers import catalog

PLACEHOLDER_KEY = "llmsim-placeholder-key"


class ErrorType(StrEnum):
    """Why a request failed, provider-neutral."""

    CONNECT = "connect"
    """The target could not be reached (refused, DNS, TLS)."""
    TIMEOUT = "timeout"
    """No complete answer within the request timeout."""
    AUTH = "auth"
    """401/403: the key was rejected."""
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    OVERLOADED = "overloaded"
    """503/529 or an overloaded error type."""
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    NOT_FOUND = "not_found"
    HTTP_ERROR = "http_error"
    """Any other non-success status."""
    MIDSTREAM_ERROR = "midstream_error"
    """An error event inside a stream that had started with 200."""
    DISCONNECT = "disconnect"
    """The stream ended without its terminator (connection cut)."""
    MALFORMED = "malformed"
    """The body or a stream event could not be parsed (garbage)."""


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
TOOL_NAME = "get_weather"


def build_call(target: Target, req: PlannedRequest, api_key: str | None) -> HttpCall:
    """The HTTP request for `req` in the target's wire format."""
    key = api_key or PLACEHOLDER_KEY
    base = target.url.rstrip("/")
    headers = {"content-type": "application/json", **target.headers}
    body: dict[str, Any]
    provider = target.provider
    if provider in (TargetProvider.OPENAI, TargetProvider.AZURE):
        messages = ([{"role": "system", "content": req.system}] if req.system else []) + [
            {"role": "user", "content": req.prompt}
        ]
        body = {
            "model": target.model,
            "messages": messages,
            "max_tokens": req.max_tokens,
            "stream": req.stream,
        }
        if req.stream:
            body["stream_options"] = {"include_usage": True}
        if req.tool_call:
            body["tools"] = [
                {"type": "function", "function": {"name": TOOL_NAME, "parameters": _TOOL_SCHEMA}}
            ]
            body["tool_choice"] = "required"
        if provider == TargetProvider.OPENAI:
            url = base + catalog.OPENAI.chat_path
        else:
            path = catalog.AZURE.chat_path.format(deployment=quote(target.model, safe=""))
            url = f"{base}{path}?api-version={quote(target.api_version)}"
    elif provider == TargetProvider.ANTHROPIC:
        body = {
            "model": target.model,
            "max_tokens": req.max_tokens,
            "messages": [{"role": "user", "content": req.prompt}],
        }
        if req.stream:
            body["stream"] = True
        if req.system:
            body["system"] = req.system
        if req.tool_call:
            body["tools"] = [{"name": TOOL_NAME, "input_schema": _TOOL_SCHEMA}]
            body["tool_choice"] = {"type": "any"}
        url = base + catalog.ANTHROPIC.chat_path
    elif provider == TargetProvider.GEMINI:
        body = {
            "contents": [{"role": "user", "parts": [{"text": req.prompt}]}],
            "generationConfig": {"maxOutputTokens": req.max_tokens},
        }
        if req.system:
            body["systemInstruction"] = {"parts": [{"text": req.system}]}
        if req.tool_call:
            body["tools"] = [{"functionDeclarations": [{"name": TOOL_NAME, "parameters": _TOOL_SCHEMA}]}]
            body["toolConfig"] = {"functionCallingConfig": {"mode": "ANY"}}
        method = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
        path = catalog.GEMINI.chat_path.format(
            version=target.gemini_api_version, model=quote(target.model, safe=""), method=method
        )
        url = base + path
    else:  # ollama
        body = {
            "model": target.model,
            "messages": ([{"role": "system", "content": req.system}] if req.system else [])
            + [{"role": "user", "content": req.prompt}],
            "stream": req.stream,
            "options": {"num_predict": req.max_tokens},
        }
        if req.tool_call:
            body["tools"] = [
                {"type": "function", "function": {"name": TOOL_NAME, "parameters": _TOOL_SCHEMA}}
            ]
        url = base + catalog.OLLAMA.chat_path
    info = catalog.get(provider.value)
    if api_key or provider != TargetProvider.OLLAMA:  # Ollama needs no key; send one only when given
        headers[info.credential_header] = info.credential_scheme + key
    headers.update(info.required_headers)
    if req.stream and provider != TargetProvider.OLLAMA:
        headers["accept"] = "text/event-stream"
    if req.conversation is not None:  # a workflow turn: the whole history instead of one prompt
        conversation.apply(provider, body, req.conversation)
    return HttpCall("POST", url, headers, json.dumps(body, separators=(",", ":")).encode())


# --- streams ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """What one stream event means to the measurement."""

    text: str = ""
    """Output text (or tool-call argument text) carried by the event."""
    tokens: int = 0
    """Token arrivals carried: 1 for an event with output text, else 0."""
    output_tokens_total: int | None = None
    """Cumulative output-token usage reported by the target, when the event carries it."""
    prompt_tokens: int | None = None
    done: bool = False
    """The event ends the stream normally (a terminator: [DONE], message_stop, done=true, finishReason)."""
    finished: bool = False
    """The event carries a finish reason (OpenAI: enough to call a stream complete at EOF)."""
    error: tuple[ErrorType, str] | None = None


class StreamDecoder:
    """Incremental decoder of SSE (`data:` events, optional `event:` lines) or NDJSON lines."""

    def __init__(self, ndjson: bool) -> None:
        self._ndjson = ndjson
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[str, str]]:
        """Complete events in `data` as (event name, data text); partial input is buffered."""
        self._buffer += data
        if self._ndjson:
            *lines, self._buffer = self._buffer.split(b"\n")
            return [("", line.decode("utf-8", "replace").strip()) for line in lines if line.strip()]
        text, held = self._buffer, b""
        if text.endswith(b"\r"):  # maybe the first half of a CRLF: decide when the next byte comes
            text, held = text[:-1], b"\r"
        text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *blocks, rest = text.split(b"\n\n")
        self._buffer = rest + held
        events: list[tuple[str, str]] = []
        for block in blocks:
            name = ""
            data_lines: list[str] = []
            for raw in block.decode("utf-8", "replace").split("\n"):
                if raw.startswith(":") or not raw:
                    continue
                field, _, value = raw.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    name = value
                elif field == "data":
                    data_lines.append(value)
            if data_lines or name:
                events.append((name, "\n".join(data_lines)))
        return events

    def leftover(self) -> bytes:
        return self._buffer


def interpret(provider: TargetProvider, event: str, data: str) -> Chunk:
    """The meaning of one stream event; garbage becomes a MALFORMED error chunk."""
    if provider in (TargetProvider.OPENAI, TargetProvider.AZURE) and data.strip() == "[DONE]":
        return Chunk(done=True)
    if provider == TargetProvider.ANTHROPIC and (event == "ping" or (event == "" and not data.strip())):
        return Chunk()
    try:
        doc = json.loads(data)
    except json.JSONDecodeError:
        return Chunk(error=(ErrorType.MALFORMED, f"stream event is not JSON: {data[:80]!r}"))
    if not isinstance(doc, dict):
        return Chunk(error=(ErrorType.MALFORMED, f"stream event is not a JSON object: {data[:80]!r}"))
    try:
        match provider:
            case TargetProvider.OPENAI | TargetProvider.AZURE:
                return _openai_chunk(doc)
            case TargetProvider.ANTHROPIC:
                return _anthropic_chunk(event, doc)
            case TargetProvider.GEMINI:
                return _gemini_chunk(doc)
            case TargetProvider.OLLAMA:
                return _ollama_chunk(doc)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        return Chunk(error=(ErrorType.MALFORMED, f"unexpected stream event shape ({exc!r}): {data[:80]!r}"))


def _text_chunk(text: str, **kw: Any) -> Chunk:
    # One content event is one token arrival for timing (providers stream a token per event);
    # the token count itself comes from the reported usage when there is one.
    return Chunk(text=text, tokens=1 if text else 0, **kw)


def _openai_chunk(doc: dict[str, Any]) -> Chunk:
    if doc.get("error"):
        return Chunk(error=(ErrorType.MIDSTREAM_ERROR, _message(doc["error"])))
    usage = doc.get("usage") or {}
    text = ""
    finished = False
    for choice in doc.get("choices") or []:
        delta = choice.get("delta") or {}
        text += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            text += (call.get("function") or {}).get("arguments") or ""
        finished = finished or bool(choice.get("finish_reason"))
    return _text_chunk(
        text,
        output_tokens_total=usage.get("completion_tokens"),
        prompt_tokens=usage.get("prompt_tokens"),
        finished=finished,
    )


def _anthropic_chunk(event: str, doc: dict[str, Any]) -> Chunk:
    kind = doc.get("type") or event
    if kind == "error" or event == "error":
        return Chunk(error=(ErrorType.MIDSTREAM_ERROR, _message(doc.get("error", doc))))
    if kind == "message_start":
        usage = (doc.get("message") or {}).get("usage") or {}
        return Chunk(prompt_tokens=usage.get("input_tokens"))
    if kind == "content_block_delta":
        delta = doc["delta"]
        return _text_chunk(delta.get("text") or delta.get("partial_json") or "")
    if kind == "message_delta":
        return Chunk(output_tokens_total=(doc.get("usage") or {}).get("output_tokens"))
    if kind == "message_stop":
        return Chunk(done=True)
    return Chunk()


def _gemini_chunk(doc: dict[str, Any]) -> Chunk:
    if doc.get("error"):
        return Chunk(error=(ErrorType.MIDSTREAM_ERROR, _message(doc["error"])))
    text, finished = _gemini_text(doc)
    usage = doc.get("usageMetadata") or {}
    return _text_chunk(
        text,
        output_tokens_total=usage.get("candidatesTokenCount") if finished else None,
        prompt_tokens=usage.get("promptTokenCount"),
        done=finished,
    )


def _gemini_text(doc: dict[str, Any]) -> tuple[str, bool]:
    text = ""
    finished = False
    for cand in doc.get("candidates") or []:
        for part in (cand.get("content") or {}).get("parts") or []:
            text += part.get("text") or ""
            if "functionCall" in part:
                text += json.dumps(part["functionCall"].get("args") or {})
        finished = finished or bool(cand.get("finishReason"))
    return text, finished


def _ollama_chunk(doc: dict[str, Any]) -> Chunk:
    if doc.get("error"):
        return Chunk(error=(ErrorType.MIDSTREAM_ERROR, _message(doc["error"])))
    message = doc.get("message") or {}
    text = message.get("content") or doc.get("response") or ""
    for call in message.get("tool_calls") or []:
        text += json.dumps((call.get("function") or {}).get("arguments") or {})
    done = bool(doc.get("done"))
    return _text_chunk(
        text,
        output_tokens_total=doc.get("eval_count") if done else None,
        prompt_tokens=doc.get("prompt_eval_count") if done else None,
        done=done,
    )


# --- whole bodies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyResult:
    text: str
    output_tokens: int | None
    prompt_tokens: int | None


def parse_body(provider: TargetProvider, body: bytes) -> BodyResult:
    """A successful non-streaming response; raises ValueError on garbage."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"response body is not JSON: {body[:80]!r}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"response body is not a JSON object: {body[:80]!r}")
    try:
        match provider:
            case TargetProvider.OPENAI | TargetProvider.AZURE:
                message = doc["choices"][0]["message"]
                text = message.get("content") or ""
                for call in message.get("tool_calls") or []:
                    text += call["function"].get("arguments") or ""
                usage = doc.get("usage") or {}
                return BodyResult(text, usage.get("completion_tokens"), usage.get("prompt_tokens"))
            case TargetProvider.ANTHROPIC:
                text = ""
                for block in doc["content"]:
                    text += block.get("text") or (json.dumps(block["input"]) if "input" in block else "")
                usage = doc.get("usage") or {}
                return BodyResult(text, usage.get("output_tokens"), usage.get("input_tokens"))
            case TargetProvider.GEMINI:
                if not doc.get("candidates"):
                    raise KeyError("candidates")
                text, _ = _gemini_text(doc)
                usage = doc.get("usageMetadata") or {}
                return BodyResult(text, usage.get("candidatesTokenCount"), usage.get("promptTokenCount"))
            case TargetProvider.OLLAMA:
                message = doc["message"]
                text = message.get("content") or ""
                for call in message.get("tool_calls") or []:
                    text += json.dumps(call["function"].get("arguments") or {})
                return BodyResult(text, doc.get("eval_count"), doc.get("prompt_eval_count"))
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"unexpected response shape (missing {exc}): {body[:80]!r}") from None
    raise ValueError(f"unknown provider {provider}")  # pragma: no cover


def classify_error(status: int, body: bytes) -> tuple[ErrorType, str]:
    """Error type and message of a non-success response, from the status and any provider shape.

    Understands OpenAI/Azure `{"error":{"type","code","message"}}`, Anthropic
    `{"type":"error","error":{"type","message"}}`, Gemini `{"error":{"code","status","message"}}`
    and Ollama `{"error":"..."}`.
    """
    kind = ""
    message = ""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and "error" in doc:
        err = doc["error"]
        if isinstance(err, dict):
            kind = " ".join(str(err.get(k) or "") for k in ("type", "code", "status")).lower()
            message = _message(err)
        else:
            message = str(err)
    if not message:
        message = body[:120].decode("utf-8", "replace").strip() or f"HTTP {status}"
    text = f"{kind} {message}".lower()
    if status in (401, 403):
        return ErrorType.AUTH, message
    if "context_length" in text or "context length" in text or "prompt is too long" in text:
        return ErrorType.CONTEXT_LENGTH, message
    if "quota" in kind or "insufficient_quota" in text or "spend_limit" in text:
        return ErrorType.QUOTA, message
    if status == 429 or "rate_limit" in kind or "resource_exhausted" in kind:
        return ErrorType.RATE_LIMIT, message
    if status in (503, 529) or "overloaded" in kind or "unavailable" in kind:
        return ErrorType.OVERLOADED, message
    if status == 408 or status == 504:
        return ErrorType.TIMEOUT, message
    if status >= 500:
        return ErrorType.SERVER_ERROR, message
    if status == 404:
        return ErrorType.NOT_FOUND, message
    if status in (400, 413, 422):
        return ErrorType.BAD_REQUEST, message
    return ErrorType.HTTP_ERROR, message


def _message(err: Any) -> str:
    if isinstance(err, dict):
        inner = err.get("error")
        if isinstance(inner, dict):
            return _message(inner)
        return str(err.get("message") or err.get("type") or err)
    return str(err)
