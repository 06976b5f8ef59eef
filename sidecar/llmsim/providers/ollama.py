"""Ollama's native API: `/api/chat`, `/api/generate`, `/api/embed` and `/api/tags`.

Streams are NDJSON (`application/x-ndjson`, one object per line, never a blank line) and are on
by default: only an explicit `"stream": false` gives one JSON body. The final object carries
`done: true`, `done_reason` and the timing fields in nanoseconds, derived from the plan:
`load_duration` is the queue wait, `prompt_eval_duration` the rest of the time to first token,
`eval_duration` the time from the first to the last token, and `total_duration` their sum.
Errors are `{"error": "<text>"}` with a real status (404 model not found, 503 server busy, ...).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from llmsim.providers import ollama_request
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
    json_body_listing,
)
from llmsim.simulation import tokens
from llmsim.simulation.plan import Choice, ResponsePlan
from llmsim.simulation.request import GenerationRequest, Operation

PROVIDER = ollama_request.PROVIDER

_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "invalid request"),
    ErrorKind.AUTHENTICATION: (401, "unauthorized"),
    ErrorKind.INVALID_KEY: (401, "unauthorized"),
    ErrorKind.CONTENT_FILTER: (400, "the request was blocked by a content filter"),
    ErrorKind.PERMISSION: (403, "forbidden"),
    ErrorKind.NOT_FOUND: (404, "model not found, try pulling it first"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "405 method not allowed"),
    ErrorKind.TOO_LARGE: (413, "http: request body too large"),
    ErrorKind.UNSUPPORTED_MEDIA: (415, "unsupported media type"),
    ErrorKind.RATE_LIMIT: (429, "too many requests, please try again later"),
    ErrorKind.QUOTA: (
        429,
        "you have reached your usage limit, please upgrade or wait for the limit to reset",
    ),
    ErrorKind.CONTEXT_LENGTH: (400, "the input length exceeds the context length"),
    ErrorKind.SERVER_ERROR: (500, "llama runner process has terminated: exit status 2"),
    ErrorKind.OVERLOADED: (503, "server busy, please try again.  maximum pending requests exceeded"),
    ErrorKind.TIMEOUT: (500, "timed out waiting for llama runner to start"),
    ErrorKind.BAD_GATEWAY: (502, "bad gateway"),
}

NDJSON_HEADERS = {"Content-Type": "application/x-ndjson"}
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
MALFORMED = b'{"model":"llmsim","created_at":"2026-\n'
"""A line whose JSON is cut off (the ollama client raises a raw JSONDecodeError on it)."""


def error_status(kind: ErrorKind) -> int:
    return _ERRORS[kind][0]


def error_answer(error: ApiError) -> BodyAnswer:
    status, default = _ERRORS[error.kind]
    body = json_body({"error": error.message or default})
    return BodyAnswer(status=status, headers={**JSON_HEADERS, **error.headers}, body=body)


def context_length_message(prompt_tokens: int, limit: int) -> str:
    return f"the input length ({prompt_tokens} tokens) exceeds the context length ({limit} tokens)"


def not_found_message(model: str) -> str:
    return f'model "{model}" not found, try pulling it first'


def _worded(error: ApiError, facts: HttpRequestFacts) -> ApiError:
    """A model-not-found error in Ollama's wording (`model "x" not found, try pulling it first`)."""
    model = ollama_request.model_hint(facts)
    if error.kind is ErrorKind.NOT_FOUND and error.param == "model" and model:
        return dataclasses.replace(error, message=not_found_message(model))
    return error


def midstream_error_frame(error: ApiError) -> bytes:
    """`{"error": "..."}` as one NDJSON line (the client raises ResponseError, status_code -1)."""
    return json_body({"error": error.message or _ERRORS[error.kind][1]}) + b"\n"


def malformed_frame() -> bytes:
    return MALFORMED


# --- rendering ----------------------------------------------------------------------------------


def created_at(plan: ResponsePlan, at_s: float) -> str:
    """RFC 3339 with sub-second digits, as Go prints `time.Time` (`2024-05-01T12:00:00.123456Z`)."""
    moment = dt.datetime.fromtimestamp(plan.created + at_s, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timing_fields(plan: ResponsePlan) -> dict[str, int]:
    """Durations in nanoseconds that add up to the plan's end-to-end time."""
    t = plan.timing
    ns = 1_000_000_000
    load = round(t.queue_s * ns)
    prompt = round((t.ttft_s - t.queue_s) * ns)
    total = round(t.e2e_s * ns)
    choice = plan.choices[0] if plan.choices else None
    return {
        "total_duration": total,
        "load_duration": load,
        "prompt_eval_count": plan.prompt_tokens,
        "prompt_eval_duration": prompt,
        "eval_count": choice.output_tokens if choice else 0,
        "eval_duration": max(total - load - prompt, 0),
    }


def done_reason(choice: Choice) -> str:
    return "length" if choice.finish_reason == "length" else "stop"


def _tool_calls(choice: Choice) -> list[dict[str, Any]]:
    return [{"function": {"name": c.name, "arguments": c.arguments}} for c in choice.tool_calls]


def _head(plan: ResponsePlan, at_s: float) -> dict[str, Any]:
    return {"model": plan.model, "created_at": created_at(plan, at_s)}


def generate_context(request: GenerationRequest, choice: Choice) -> list[int]:
    """`/api/generate`'s `context`: the request's own `context`, then this exchange (system,
    prompt, reply) as token ids, for the client to send back with its next prompt."""
    exchange = [p for m in request.messages for p in tokens.split(m.text)] + list(choice.pieces)
    return [*request.context_tokens, *context_ids(exchange)]


def final_object(
    plan: ResponsePlan, chat: bool, *, whole: bool, request: GenerationRequest | None = None
) -> dict[str, Any]:
    """The `done: true` object; with `whole`, it carries the full reply (stream: false)."""
    choice = plan.choices[0]
    obj = _head(plan, plan.timing.e2e_s)
    text = choice.text if whole else ""
    if chat:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if whole and choice.tool_calls:
            message["tool_calls"] = _tool_calls(choice)
        obj["message"] = message
    else:
        obj["response"] = text
        if request is not None and not request.extra.get("raw"):
            obj["context"] = generate_context(request, choice)
    if whole and choice.logprobs is not None:
        obj["logprobs"] = logprobs_list(choice)
    return {**obj, "done": True, "done_reason": done_reason(choice), **timing_fields(plan)}


def logprobs_list(choice: Choice, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
    """`[{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]` for pieces [start, stop)."""
    entries = (choice.logprobs or ())[start:stop]
    return [{"token": e.token, "logprob": e.logprob,
             "top_logprobs": [{"token": t, "logprob": v} for t, v in e.top]} for e in entries]  # fmt: skip


def _slot_object(plan: ResponsePlan, choice: Choice, k: int, chat: bool) -> dict[str, Any] | None:
    """Token slot k: a text piece, or (chat) the whole tool call on its last argument token."""
    at = plan.timing.token_offsets_s[k]
    obj = _head(plan, at)
    if k < len(choice.pieces):
        piece = choice.pieces[k]
        if chat:
            obj["message"] = {"role": "assistant", "content": piece}
        else:
            obj["response"] = piece
        if choice.logprobs is not None:
            obj["logprobs"] = logprobs_list(choice, k, k + 1)
        return {**obj, "done": False}
    k -= len(choice.pieces)
    for call in choice.tool_calls:
        if k < len(call.argument_pieces):
            if k < len(call.argument_pieces) - 1 or not chat:
                return None
            obj["message"] = {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": call.name, "arguments": call.arguments}}],
            }
            return {**obj, "done": False}
        k -= len(call.argument_pieces)
    return None


def stream_frames(plan: ResponsePlan, *, chat: bool, request: GenerationRequest | None = None) -> list[Frame]:
    choice = plan.choices[0]
    frames: list[Frame] = []
    for k in range(choice.output_tokens):
        obj = _slot_object(plan, choice, k, chat)
        if obj is not None:
            frames.append(Frame(plan.timing.token_offsets_s[k], json_body(obj) + b"\n", token=k))
    final = json_body(final_object(plan, chat, whole=False, request=request)) + b"\n"
    frames.append(Frame(plan.timing.e2e_s, final, token=TRAILER))
    return frames


KEEP_ALIVE_S = 300.0
"""How long Ollama keeps a model loaded after its last request (its default `keep_alive`, 5m)."""


def _tagged(name: str) -> str:
    return name if ":" in name else name + ":latest"


def ps_body(loaded: Mapping[str, float], now_unix: float, context_length: int) -> dict[str, Any]:
    """`GET /api/ps`: the models still loaded at `now_unix`, given each one's expiry (unix time),
    most recently used first."""
    out = []
    for name, expires in sorted(loaded.items(), key=lambda kv: -kv[1]):
        if expires <= now_unix:
            continue
        tag = _tagged(name)
        moment = dt.datetime.fromtimestamp(expires, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append({"name": tag, "model": tag, "size": 6_654_289_920, "digest": hashlib.sha256(tag.encode()).hexdigest(),
                    "details": _DETAILS, "expires_at": moment, "size_vram": 6_654_289_920,
                    "context_length": context_length})  # fmt: skip
    return {"models": out}


def context_ids(pieces: Sequence[str]) -> list[int]:
    """Token ids for `/api/generate`'s `context`: a stable id per token piece in a llama-3-sized
    vocabulary (the simulator has no real tokenizer; the ids only have to round-trip)."""
    return [zlib.crc32(p.encode()) % VOCABULARY for p in pieces]


VOCABULARY = 128_256
"""Token ids in `context` are below this (llama 3's vocabulary size)."""

_DETAILS = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "8.0B",
    "quantization_level": "Q4_K_M",
}


def tags_body(models: list[str], created: int) -> dict[str, Any]:
    """`GET /api/tags`: the locally "installed" models."""
    modified = dt.datetime.fromtimestamp(created, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = []
    for name in models:
        tagged = _tagged(name)
        digest = hashlib.sha256(tagged.encode()).hexdigest()
        out.append({"name": tagged, "model": tagged, "modified_at": modified, "size": 4_920_000_000,
                    "digest": digest, "details": dict(_DETAILS)})  # fmt: skip
    return {"models": out}


class _Generation:
    provider = PROVIDER
    chat = True

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        if request.stream:
            frames = stream_frames(plan, chat=self.chat, request=request)
            return StreamAnswer(200, dict(NDJSON_HEADERS), tuple(frames))
        body = json_body(final_object(plan, self.chat, whole=True, request=request))
        return BodyAnswer(200, dict(JSON_HEADERS), body, at_s=plan.timing.e2e_s)

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        return error_answer(_worded(error, facts))


class Chat(_Generation):
    """`POST /api/chat`."""

    operation: Operation = "chat"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return ollama_request.parse_chat(facts)


class Generate(_Generation):
    """`POST /api/generate`."""

    operation: Operation = "completion"
    chat = False

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return ollama_request.parse_generate(facts)


class Embed:
    """`POST /api/embed`."""

    provider = PROVIDER
    operation: Operation = "embeddings"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return ollama_request.parse_embed(facts)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        t = plan.timing
        body = {
            "model": plan.model,
            "embeddings": [],
            "total_duration": round(t.ttft_s * 1e9),
            "load_duration": round(t.queue_s * 1e9),
            "prompt_eval_count": plan.prompt_tokens,
        }
        vectors = [list(v) for v in plan.embeddings]
        return BodyAnswer(
            200, dict(JSON_HEADERS), json_body_listing(body, "embeddings", vectors), at_s=t.ttft_s
        )

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        return error_answer(_worded(error, facts))


VERSION = "0.12.6"
"""The Ollama server version `GET /api/version` reports."""


def show_body(model: str, created: int) -> dict[str, Any]:
    """`POST /api/show`: a model's details and capabilities."""
    modified = dt.datetime.fromtimestamp(created, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "modelfile": f"FROM {model}\n",
        "parameters": 'stop "<|eot_id|>"',
        "template": "{{ .Prompt }}",
        "details": tags_body([model], created)["models"][0]["details"],
        "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
        "capabilities": ["completion", "tools"],
        "modified_at": modified,
    }
