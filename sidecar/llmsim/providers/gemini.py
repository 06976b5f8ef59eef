"""Google Gemini API: `/{v1,v1beta,v1alpha}/models/{model}:{method}`.

Methods: `generateContent`, `streamGenerateContent` (SSE with `?alt=sse`, where every event is
exactly `data: <json>` + CRLF CRLF and there is no `[DONE]`; a JSON array streamed element by
element without it), `countTokens`, `embedContent` and `batchEmbedContents`. Errors are
google.rpc.Status objects: `{"error": {"code", "message", "status", "details"}}`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from llmsim.providers import gemini_request
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
from llmsim.simulation.plan import Choice, ResponsePlan
from llmsim.simulation.request import GenerationRequest, Operation

PROVIDER = gemini_request.PROVIDER

# (HTTP status, google.rpc.Code name, default message) per error kind, as the Gemini API answers.
_ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    ErrorKind.AUTHENTICATION: (
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    ),
    ErrorKind.INVALID_KEY: (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    ErrorKind.PERMISSION: (403, "PERMISSION_DENIED", "The caller does not have permission"),
    ErrorKind.CONTENT_FILTER: (400, "INVALID_ARGUMENT", "The request was blocked by the safety filters."),
    ErrorKind.NOT_FOUND: (404, "NOT_FOUND", "Requested entity was not found."),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "UNIMPLEMENTED", "Method not allowed."),
    ErrorKind.TOO_LARGE: (400, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 20971520 bytes."),
    ErrorKind.UNSUPPORTED_MEDIA: (400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
    ErrorKind.RATE_LIMIT: (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    ErrorKind.QUOTA: (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    ErrorKind.CONTEXT_LENGTH: (
        400,
        "INVALID_ARGUMENT",
        "The input token count exceeds the maximum number of tokens allowed.",
    ),
    ErrorKind.SERVER_ERROR: (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    ErrorKind.OVERLOADED: (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    ErrorKind.TIMEOUT: (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    ErrorKind.BAD_GATEWAY: (502, "UNAVAILABLE", "The service is currently unavailable."),
}

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "stop_sequence": "STOP",
           "content_filter": "SAFETY", "refusal": "STOP"}  # fmt: skip
_HARM_CATEGORIES = ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_HARASSMENT",
                    "HARM_CATEGORY_SEXUALLY_EXPLICIT")  # fmt: skip


def safety_ratings(choice: Choice) -> dict[str, Any]:
    """`safetyRatings` of a candidate the safety filter stopped (`finishReason: SAFETY`): the
    dangerous-content category `HIGH` and `blocked`; empty for other candidates."""
    if choice.finish_reason != "content_filter":
        return {}
    return {"safetyRatings": _blocking_ratings()}


def _blocking_ratings() -> list[dict[str, Any]]:
    """Every harm category `NEGLIGIBLE` but dangerous content: `HIGH`, and blocked."""
    return [
        {"category": c, "probability": "HIGH", "blocked": True}
        if c == "HARM_CATEGORY_DANGEROUS_CONTENT"
        else {"category": c, "probability": "NEGLIGIBLE"}
        for c in _HARM_CATEGORIES
    ]


_SSE_END = b"\r\n\r\n"
MALFORMED_SSE = b'data: {"candidates":[{"content":{"parts":[{"text":"' + _SSE_END
MALFORMED_ARRAY = b'{"candidates":[{"content":{"parts":[{"text":"\r\n'
STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
JSON_HEADERS = {"Content-Type": "application/json; charset=UTF-8"}


def error_status(kind: ErrorKind) -> int:
    return _ERRORS[kind][0]


def _retry_delay(error: ApiError) -> str | None:
    raw = error.headers.get("retry-after-ms")
    try:
        if raw is not None:
            return f"{math.ceil(float(raw) / 1000)}s"
        raw = error.headers.get("retry-after")
        return f"{math.ceil(float(raw))}s" if raw is not None else None
    except ValueError:
        return None


def error_object(error: ApiError) -> dict[str, Any]:
    """The google.rpc.Status object (the value of `"error"`)."""
    status, code, default = _ERRORS[error.kind]
    inner: dict[str, Any] = {"code": status, "message": error.message or default, "status": code}
    details: list[dict[str, Any]] = []
    if error.kind is ErrorKind.QUOTA:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}
                ],
            }
        )
    delay = _retry_delay(error)
    if delay is not None and error.kind in (ErrorKind.RATE_LIMIT, ErrorKind.QUOTA, ErrorKind.OVERLOADED):
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    if error.kind in (ErrorKind.AUTHENTICATION, ErrorKind.INVALID_KEY):
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "CONSUMER_INVALID" if error.kind is ErrorKind.AUTHENTICATION else "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if details:
        inner["details"] = details
    return inner


def error_answer(error: ApiError) -> BodyAnswer:
    """A google.rpc.Status error response (Gemini sends no rate-limit headers; retry hints live in
    `details[].retryDelay`, but a fault's extra headers are passed through)."""
    body = json_body({"error": error_object(error)})
    return BodyAnswer(status=error_status(error.kind), headers={**JSON_HEADERS, **error.headers}, body=body)


def context_length_message(prompt_tokens: int, limit: int) -> str:
    """Gemini's wording for a prompt over the context window."""
    return f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens allowed ({limit})."


def not_found_message(model: str, version: str, method: str) -> str:
    return (
        f"models/{model} is not found for API version {version}, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods."
    )


def finish_reason(choice: Choice) -> str:
    return _FINISH[choice.finish_reason]


def _parts(choice: Choice) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if choice.pieces or not choice.tool_calls:
        parts.append({"text": choice.text})
    for call in choice.tool_calls:
        parts.append({"functionCall": {"name": call.name, "args": call.arguments}})
    return parts


def usage_metadata(plan: ResponsePlan, candidates_tokens: int | None = None) -> dict[str, Any]:
    out = plan.completion_tokens if candidates_tokens is None else candidates_tokens
    meta: dict[str, Any] = {"promptTokenCount": plan.prompt_tokens}
    if plan.cached_tokens:
        meta["cachedContentTokenCount"] = plan.cached_tokens
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.cached_tokens}]
    if out:
        meta["candidatesTokenCount"] = out
    meta["totalTokenCount"] = plan.prompt_tokens + out
    meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.prompt_tokens}]
    return meta


def _envelope(plan: ResponsePlan, candidates: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": plan.model,
        "responseId": plan.response_id,
    }


def blocked_prompt_answer(request: GenerationRequest, prompt_tokens: int) -> BodyAnswer:
    """A prompt the safety filters blocked: HTTP 200, no candidates, `promptFeedback.blockReason:
    SAFETY` with its ratings (streamed: as the one chunk of the stream)."""
    ratings = _blocking_ratings()
    doc = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
           "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
           "modelVersion": request.model}  # fmt: skip
    if not request.stream:
        return BodyAnswer(status=200, headers=dict(JSON_HEADERS), body=json_body(doc))
    if request.extra.get("sse"):
        return BodyAnswer(
            status=200, headers=dict(STREAM_HEADERS), body=b"data: " + json_body(doc) + _SSE_END
        )
    return BodyAnswer(status=200, headers=dict(JSON_HEADERS), body=b"[" + json_body(doc) + b"]")


def logprobs_fields(choice: Choice, start: int = 0, stop: int | None = None) -> dict[str, Any]:
    """`avgLogprobs` and `logprobsResult` of a candidate's tokens [start, stop) (none unless asked)."""
    if choice.logprobs is None:
        return {}
    entries = choice.logprobs[start:stop]
    total = sum(e.logprob for e in entries)
    result: dict[str, Any] = {
        "topCandidates": [
            {"candidates": [{"token": t, "logProbability": v} for t, v in e.top]} for e in entries
        ],
        "chosenCandidates": [{"token": e.token, "logProbability": e.logprob} for e in entries],
        "logProbabilitySum": round(total, 6),
    }
    if not any(e.top for e in entries):
        del result["topCandidates"]
    return {"avgLogprobs": round(total / len(entries), 6) if entries else 0.0, "logprobsResult": result}


def response_body(plan: ResponsePlan) -> dict[str, Any]:
    """A non-streamed GenerateContentResponse."""
    candidates = [
        {"content": {"parts": _parts(c), "role": "model"}, "finishReason": finish_reason(c), "index": c.index,
         **logprobs_fields(c), **safety_ratings(c)}
        for c in plan.choices
    ]  # fmt: skip
    return _envelope(plan, candidates, usage_metadata(plan))


def _chunk_parts(choice: Choice, start: int, end: int) -> list[dict[str, Any]]:
    """The parts a chunk covering token slots [start, end) carries for one candidate: its text
    pieces, and every function call whole in the chunk that holds the last call's last argument
    token (Gemini never streams partial calls and sends parallel calls together)."""
    parts: list[dict[str, Any]] = []
    text = "".join(choice.pieces[start:end])
    if text:
        parts.append({"text": text})
    last = choice.output_tokens - 1
    if choice.tool_calls and start <= last < end:
        parts.extend({"functionCall": {"name": c.name, "args": c.arguments}} for c in choice.tool_calls)
    return parts


def stream_frames(plan: ResponsePlan, *, sse: bool) -> list[Frame]:
    """Chunks of a streamed answer, each sent when its last token is due: token slots grouped as
    `plan.stream_groups` says (one per chunk without groups), the last chunk carrying
    `finishReason`, each the cumulative `usageMetadata`. Without `alt=sse`, the chunks are the
    elements of one JSON array."""

    def frame(obj: dict[str, Any], last: bool) -> bytes:
        if sse:
            return b"data: " + json_body(obj) + _SSE_END
        return json_body(obj) + (b"]" if last else b",\r\n")

    offsets = plan.timing.token_offsets_s
    first = offsets[0] if offsets else plan.timing.ttft_s
    frames: list[Frame] = [] if sse else [Frame(first, b"[")]
    groups = plan.stream_groups or (1,) * plan.stream_length
    if not groups:  # nothing to stream: one chunk with the finish reason
        last = [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": finish_reason(c),
                 "index": c.index, **safety_ratings(c)} for c in plan.choices]  # fmt: skip
        end = _envelope(plan, last, usage_metadata(plan))
        return [*frames, Frame(plan.timing.e2e_s, frame(end, True), token=TRAILER)]
    start = 0
    for number, size in enumerate(groups):
        stop = start + size
        final = number == len(groups) - 1
        candidates = []
        for choice in plan.choices:
            parts = _chunk_parts(choice, start, stop)
            probs = logprobs_fields(choice, start, stop) if start < len(choice.pieces) else {}
            if final:
                entry = {"content": {"parts": parts or [{"text": ""}], "role": "model"},
                         "finishReason": finish_reason(choice), "index": choice.index, **probs,
                         **safety_ratings(choice)}  # fmt: skip
                candidates.append(entry)
            elif parts:
                candidates.append(
                    {"content": {"parts": parts, "role": "model"}, "index": choice.index, **probs}
                )
        if candidates:
            emitted = sum(min(stop, c.output_tokens) for c in plan.choices)
            chunk = _envelope(plan, candidates, usage_metadata(plan, emitted))
            frames.append(Frame(offsets[stop - 1], frame(chunk, final), token=stop - 1))
        start = stop
    return frames


def _sse(request: GenerationRequest | None) -> bool:
    return request is None or bool(request.extra.get("sse", True))


def midstream_error_frame(error: ApiError, request: GenerationRequest | None = None) -> bytes:
    """`data: {"error": {...}}`: the SDK raises ClientError/ServerError by `error.code`. Pass the
    request of a JSON-array stream (no `alt=sse`) to get the array's last element instead."""
    body = json_body({"error": error_object(error)})
    return b"data: " + body + _SSE_END if _sse(request) else body + b"]"


def malformed_frame(request: GenerationRequest | None = None) -> bytes:
    """A chunk whose JSON is cut off (the SDK fails to decode it); SSE unless the request says not."""
    return MALFORMED_SSE if _sse(request) else MALFORMED_ARRAY


class _Base:
    provider = PROVIDER

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        if error.kind is ErrorKind.NOT_FOUND and error.param == "model":
            version = facts.route.get("version") or facts.path.split("/")[1]
            method = facts.path.rsplit(":", 1)[-1]
            message = not_found_message(gemini_request.model_of(facts), version, method)
            error = dataclasses.replace(error, message=message)
        return error_answer(error)


class GenerateContent(_Base):
    """`:generateContent` (stream=False) and `:streamGenerateContent` (stream=True)."""

    operation: Operation = "chat"

    def __init__(self, *, stream: bool) -> None:
        self.stream = stream

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return gemini_request.parse_generate(facts, stream=self.stream)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        if request.stream:
            sse = bool(request.extra.get("sse"))
            headers = STREAM_HEADERS if sse else JSON_HEADERS
            return StreamAnswer(200, dict(headers), tuple(stream_frames(plan, sse=sse)))
        return BodyAnswer(200, dict(JSON_HEADERS), json_body(response_body(plan)), at_s=plan.timing.e2e_s)


class CountTokens(_Base):
    """`:countTokens` -> `{"totalTokens": N}`."""

    operation: Operation = "count_tokens"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return gemini_request.parse_count_tokens(facts)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        body = {
            "totalTokens": plan.prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": plan.prompt_tokens}],
        }
        return BodyAnswer(200, dict(JSON_HEADERS), json_body(body), at_s=plan.timing.queue_s)


class EmbedContent(_Base):
    """`:embedContent` (`{"embedding": {"values"}}`) and `:batchEmbedContents` (`{"embeddings": [...]}`)."""

    operation: Operation = "embeddings"

    def __init__(self, *, batch: bool) -> None:
        self.batch = batch

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        return gemini_request.parse_embed(facts, batch=self.batch)

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        vectors = [{"values": list(v)} for v in plan.embeddings]
        if self.batch:
            body = json_body_listing({"embeddings": []}, "embeddings", vectors)
        else:
            body = json_body({"embedding": vectors[0]})
        return BodyAnswer(200, dict(JSON_HEADERS), body, at_s=plan.timing.ttft_s)


ENDPOINTS: dict[str, GenerateContent | CountTokens | EmbedContent] = {
    "generateContent": GenerateContent(stream=False),
    "streamGenerateContent": GenerateContent(stream=True),
    "countTokens": CountTokens(),
    "embedContent": EmbedContent(batch=False),
    "batchEmbedContents": EmbedContent(batch=True),
}
"""The Gemini endpoints by method name (the part after `:` in the path)."""


def _model_resource(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "description": f"Simulated model {name} (llmsim)",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 8192,
        "supportedGenerationMethods": [
            "generateContent",
            "countTokens",
            "embedContent",
            "batchEmbedContents",
        ],
    }


def list_models(
    listed: list[str], model_id: str | None, *, strict: bool = False
) -> tuple[int, dict[str, Any]]:
    """`GET /v1beta/models[/{id}]` in Gemini's shape: (status, body)."""
    if model_id is None:
        return 200, {"models": [_model_resource(m) for m in listed]}
    name = model_id.removeprefix("models/")
    if strict and name not in listed:
        error = ApiError(ErrorKind.NOT_FOUND, f"models/{name} is not found for API version v1beta.")
        return 404, {"error": error_object(error)}
    return 200, _model_resource(name)
