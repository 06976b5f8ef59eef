"""Provider-shaped error responses and in-stream error frames for perturb mode. Pure.

Shapes follow `notes/provider-wire-formats.md` §4-5 (and so what the official SDKs parse).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from llmsim.api.faults import FaultType


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    headers: dict[str, str]
    body: bytes


_MESSAGES: dict[FaultType, str] = {
    FaultType.RATE_LIMIT: "Rate limit reached for requests. Please try again in 1s.",
    FaultType.QUOTA: "You exceeded your current quota, please check your plan and billing details.",
    FaultType.OVERLOADED: "The server is currently overloaded, please try again later.",
    FaultType.SERVER_ERROR: "The server had an error while processing your request. Sorry about that!",
    FaultType.CONTEXT_LENGTH: "This model's maximum context length was exceeded by the input.",
    FaultType.TIMEOUT: "The request timed out.",
}
_STATUS = {
    FaultType.RATE_LIMIT: 429,
    FaultType.QUOTA: 429,
    FaultType.OVERLOADED: 503,
    FaultType.SERVER_ERROR: 500,
    FaultType.CONTEXT_LENGTH: 400,
    FaultType.TIMEOUT: 504,
}
_OPENAI_TYPE = {
    FaultType.RATE_LIMIT: ("requests", "rate_limit_exceeded"),
    FaultType.QUOTA: ("insufficient_quota", "insufficient_quota"),
    FaultType.OVERLOADED: ("server_error", None),
    FaultType.SERVER_ERROR: ("server_error", None),
    FaultType.CONTEXT_LENGTH: ("invalid_request_error", "context_length_exceeded"),
    FaultType.TIMEOUT: ("timeout", None),
}
_ANTHROPIC_TYPE = {
    FaultType.RATE_LIMIT: "rate_limit_error",
    FaultType.QUOTA: "rate_limit_error",
    FaultType.OVERLOADED: "overloaded_error",
    FaultType.SERVER_ERROR: "api_error",
    FaultType.CONTEXT_LENGTH: "invalid_request_error",
    FaultType.TIMEOUT: "timeout_error",
}
_GEMINI_STATUS = {
    FaultType.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    FaultType.QUOTA: "RESOURCE_EXHAUSTED",
    FaultType.OVERLOADED: "UNAVAILABLE",
    FaultType.SERVER_ERROR: "INTERNAL",
    FaultType.CONTEXT_LENGTH: "INVALID_ARGUMENT",
    FaultType.TIMEOUT: "DEADLINE_EXCEEDED",
}


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def error_response(
    provider: str, fault: FaultType, retry_after_s: float = 1.0, message: str | None = None
) -> ErrorResponse:
    """The provider's error for a status fault (`rate_limit`, `quota`, `overloaded`, `server_error`,
    `context_length`, `timeout`)."""
    status = _STATUS.get(fault, 500)
    text = message or _MESSAGES.get(fault, _MESSAGES[FaultType.SERVER_ERROR])
    headers = {"content-type": "application/json", "x-llmsim-fault": fault.value}
    if fault in (FaultType.RATE_LIMIT, FaultType.OVERLOADED):
        headers["retry-after"] = f"{retry_after_s:g}"
        headers["retry-after-ms"] = str(round(retry_after_s * 1000))
    if fault is FaultType.QUOTA:
        headers["x-should-retry"] = "false"
    body: object
    if provider == "anthropic":
        if fault is FaultType.OVERLOADED:
            status = 529
        body = {"type": "error", "error": {"type": _ANTHROPIC_TYPE.get(fault, "api_error"), "message": text}}
    elif provider == "gemini":
        body = {"error": {"code": status, "message": text, "status": _GEMINI_STATUS.get(fault, "INTERNAL")}}
    elif provider == "ollama":
        body = {"error": text}
    else:
        kind, code = _OPENAI_TYPE.get(fault, ("server_error", None))
        param = "messages" if fault is FaultType.CONTEXT_LENGTH else None
        body = {"error": {"message": text, "type": kind, "param": param, "code": code}}
    return ErrorResponse(status, headers, _dumps(body))


def midstream_error_frame(provider: str) -> bytes:
    """The in-stream error event each provider's SDK recognises."""
    text = "The server had an error while processing your request."
    if provider == "anthropic":
        data = _dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        return b"event: error\ndata: " + data + b"\n\n"
    if provider == "ollama":
        return _dumps({"error": text}) + b"\n"
    if provider == "gemini":
        return (
            b"data: " + _dumps({"error": {"code": 500, "message": text, "status": "INTERNAL"}}) + b"\r\n\r\n"
        )
    return (
        b"data: "
        + _dumps({"error": {"message": text, "type": "server_error", "param": None, "code": None}})
        + b"\n\n"
    )


def malformed_frame(provider: str) -> bytes:
    """A broken frame (truncated JSON) for client-hardening tests."""
    if provider == "ollama":
        return b'{"model":"x","message":{"role":"assistant","content":"\n'
    return b'data: {"id":"broken","choices":[{"delta":{"content":"\n\n'


def invalid_request(provider: str, message: str) -> ErrorResponse:
    """HTTP 400 in the provider's shape (e.g. for a bad `x-simulation-mode` header)."""
    body: object
    if provider == "anthropic":
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    elif provider == "gemini":
        body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    elif provider == "ollama":
        body = {"error": message}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return ErrorResponse(400, {"content-type": "application/json"}, _dumps(body))
