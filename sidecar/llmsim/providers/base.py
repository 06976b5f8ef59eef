"""The contract between the HTTP shell and the provider wire formats."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, NamedTuple, Protocol

from llmsim.providers import json_input
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest


@dataclass(frozen=True)
class HttpRequestFacts:
    """What a parser may look at: the HTTP request, already read (body size-limited by the shell)."""

    method: str
    path: str
    route: Mapping[str, str]
    """Path parameters of the matched route (e.g. `deployment`, `model`, `method`)."""
    query: Mapping[str, str]
    headers: Mapping[str, str]
    """Request headers; keys are lower-case."""
    body: bytes
    request_id: str = ""
    """The id the simulator assigned to this request (used in ids and request-id headers)."""


class Frame(NamedTuple):
    """A piece of a streamed body, due `at_s` seconds after the request was admitted.

    `token` is the index of the output token whose arrival this frame carries (-1 for frames
    before the first token, e.g. a role chunk that rides with it, and a large number for trailers).
    Frames are in send order; `at_s` never decreases. (A NamedTuple: a 200-token stream creates a
    few hundred of them per request, and a tuple is twice as cheap to build as a frozen dataclass.)
    """

    at_s: float
    data: bytes
    token: int = -1


TRAILER = 1 << 30
"""`Frame.token` of frames after the last token (finish chunk, usage, [DONE])."""


@dataclass(frozen=True)
class StreamAnswer:
    """A streamed response: status and headers go out with the first frame."""

    status: int
    headers: dict[str, str]
    frames: tuple[Frame, ...]
    end: Literal["eof", "abort", "stall"] = "eof"
    """`eof`: close the body normally; `abort`: cut the connection (no terminator);
    `stall`: send nothing more and hold the connection for `stall_s`, then cut it."""
    stall_s: float = 0.0


@dataclass(frozen=True)
class BodyAnswer:
    """A whole response body sent at `at_s` (or a connection cut / stall instead)."""

    status: int
    headers: dict[str, str]
    body: bytes
    at_s: float = 0.0
    end: Literal["eof", "abort", "stall"] = "eof"
    stall_s: float = 0.0


Answer = BodyAnswer | StreamAnswer


class ErrorKind(StrEnum):
    """Provider-neutral error classes; each provider maps them to its status, type and message."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    """No usable credentials were sent."""
    INVALID_KEY = "invalid_key"
    """An API key was sent and is not valid (Gemini answers this one with 400, not 403)."""
    PERMISSION = "permission"
    CONTENT_FILTER = "content_filter"
    """The prompt was rejected by the provider's content filter."""
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    CONTEXT_LENGTH = "context_length"
    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    BAD_GATEWAY = "bad_gateway"
    """The proxy could not reach the upstream."""


def kind_for_status(status: int) -> ErrorKind:
    """The error kind a provider's HTTP status means (for answers llmsim forwards, not renders)."""
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    return ErrorKind.SERVER_ERROR if status >= 500 else ErrorKind.INVALID_REQUEST


_STATUS_KINDS = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    405: ErrorKind.METHOD_NOT_ALLOWED,
    413: ErrorKind.TOO_LARGE,
    415: ErrorKind.UNSUPPORTED_MEDIA,
    429: ErrorKind.RATE_LIMIT,
    502: ErrorKind.BAD_GATEWAY,
    503: ErrorKind.OVERLOADED,
    504: ErrorKind.TIMEOUT,
    529: ErrorKind.OVERLOADED,
}


@dataclass(frozen=True)
class ApiError(Exception):
    """A request the simulator answers with an error in the provider's shape."""

    kind: ErrorKind
    message: str
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers (retry-after, rate-limit headers, ...)."""

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


class Endpoint(Protocol):
    """One provider operation (e.g. OpenAI chat completions) on one or more routes."""

    @property
    def provider(self) -> str:
        """`openai`, `azure`, `anthropic`, `gemini` or `ollama` (metrics label, fault rendering)."""
        ...

    @property
    def operation(self) -> str:
        """One of the `Operation` names (`chat`, `completion`, `responses`, `embeddings`, `count_tokens`)."""
        ...

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        """Validate and translate the request; raise ApiError for bad input."""
        ...

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        """Render a successful plan (including in-stream faults recorded in `plan.fault`)."""
        ...

    def render_error(self, error: ApiError, facts: HttpRequestFacts) -> BodyAnswer:
        """Render an error in the provider's own shape."""
        ...


def json_body(obj: Any) -> bytes:
    """Compact JSON as the real providers send it (an unpaired surrogate, which no client can
    have sent in a decoded body but a path may carry, becomes `?` rather than an error)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")


def json_body_listing(obj: dict[str, Any], key: str, items: list[Any]) -> bytes:
    """`json_body(obj)` with `obj[key]` set to `items`, each item encoded by its own call: a list
    of 2048 embeddings is 60 MB of JSON, and one `json.dumps` of it holds the interpreter lock
    for seconds, while an item at a time lets the event loop run between items when a worker
    thread renders it. `obj` must not hold `key` nested inside one of its other values."""
    head = json_body({**obj, key: []})
    marker = json_body({key: []})[1:-1]  # `"key":[]`
    at = head.index(marker) + len(marker) - 1
    parts = [head[:at]]
    for i, item in enumerate(items):
        if i:
            parts.append(b",")
        parts.append(json_body(item))
    parts.append(head[at:])
    return b"".join(parts)  # one copy of the whole body


def decode_json(body: bytes) -> Any:
    """The decoded body; ApiError INVALID_REQUEST (or TOO_LARGE past the decoding budget) saying
    what is wrong (see `json_input`)."""
    try:
        return json_input.decode(body)
    except json_input.JsonInputError as exc:
        kind = ErrorKind.TOO_LARGE if exc.too_large else ErrorKind.INVALID_REQUEST
        raise ApiError(kind, exc.message) from None


def json_model_hint(body: bytes) -> str | None:
    """The `model` of a JSON body, if it has one (for wording errors raised after parsing)."""
    try:
        doc = json_input.decode(body)
    except json_input.JsonInputError:
        return None
    model = doc.get("model") if isinstance(doc, dict) else None
    return model if isinstance(model, str) and model else None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or ApiError(INVALID_REQUEST) saying what is wrong."""
    if not body.strip():
        raise ApiError(ErrorKind.INVALID_REQUEST, "The request body is empty; expected a JSON object.")
    doc = decode_json(body)
    if not isinstance(doc, dict):
        raise ApiError(
            ErrorKind.INVALID_REQUEST, f"The request body must be a JSON object, not {type(doc).__name__}."
        )
    return doc
