"""Render a FaultDecision in the target provider's wire format. Pure.

Three shapes of fault:

* status faults (`rate_limit`, `quota`, `overloaded`, `server_error`, `context_length`, and a
  `midstream_error` on a non-streamed answer) replace the response: `fault_error` returns the
  ApiError the endpoint renders with its own `render_error` (status, body shape, request id),
  carrying the provider's message and the retry headers (`retry-after`, `retry-after-ms`, the
  rate-limit headers; `x-should-retry: false` for quota, never for rate limits);
* `timeout` sends nothing at all: `stall_answer` holds the connection for `params.timeoutS` and
  then cuts it (the client gives up first);
* stream faults transform the rendered success answer (`apply`): `disconnect` cuts the frames
  after k tokens and aborts the connection; `malformed_chunk` inserts the provider's broken
  frame at that point; `midstream_error` appends the provider's in-stream error frame and ends
  the body. Non-streamed answers get the equivalents: a body cut half-way (`disconnect`) or a
  truncated JSON body (`malformed_chunk`). `slow_stream` is applied by the planner.

Error bodies, default messages and in-stream frames come from the provider modules
(`openai_common`, `anthropic`, `gemini`, `ollama`); this module chooses the error kind, the
messages that quote numbers (rate limits, context length) and the headers.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, cast

from llmsim.api.faults import FaultType
from llmsim.providers import anthropic, gemini, ollama, openai_common, sse
from llmsim.providers.base import Answer, ApiError, BodyAnswer, ErrorKind, Frame
from llmsim.simulation import planner
from llmsim.simulation.faults import STREAM_FAULTS
from llmsim.simulation.plan import FaultDecision
from llmsim.simulation.ratelimit import Verdict, go_duration
from llmsim.simulation.request import GenerationRequest

KINDS: dict[FaultType, ErrorKind] = {
    FaultType.RATE_LIMIT: ErrorKind.RATE_LIMIT,
    FaultType.QUOTA: ErrorKind.QUOTA,
    FaultType.OVERLOADED: ErrorKind.OVERLOADED,
    FaultType.SERVER_ERROR: ErrorKind.SERVER_ERROR,
    FaultType.CONTEXT_LENGTH: ErrorKind.CONTEXT_LENGTH,
    FaultType.AUTHENTICATION: ErrorKind.INVALID_KEY,
    FaultType.PERMISSION: ErrorKind.PERMISSION,
    FaultType.PROMPT_FILTER: ErrorKind.CONTENT_FILTER,
}
"""Status faults and the error kind each provider renders them as."""

MIDSTREAM_KIND: dict[str, ErrorKind] = {
    "anthropic": ErrorKind.OVERLOADED,
    "gemini": ErrorKind.OVERLOADED,
}
"""What a mid-stream error says per provider (Anthropic: `overloaded_error`, Gemini: 503
UNAVAILABLE, as they commonly fail); everyone else: a server error."""

_OPENAI_MESSAGES: dict[FaultType, str] = {
    FaultType.QUOTA: "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    FaultType.OVERLOADED: "The engine is currently overloaded, please try again later.",
    FaultType.SERVER_ERROR: "The server had an error while processing your request. Sorry about that!",
    FaultType.AUTHENTICATION: "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    FaultType.PROMPT_FILTER: "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
    "Please try again with a different prompt: https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
}

MISSING_KEY_MESSAGES: dict[str, str] = {
    "openai": "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username and password. You can obtain an API key "
    "from https://platform.openai.com/account/api-keys.",
    "anthropic": "x-api-key header is required",
}
"""What a provider says when no key came at all (others: their 401/403 default wording)."""

_AZURE_OWN_WORDING = frozenset({FaultType.AUTHENTICATION, FaultType.PERMISSION, FaultType.PROMPT_FILTER})
"""Faults Azure answers in its own words (`openai_common`), not OpenAI's."""


OPENAI_MALFORMED = (
    b'data: {"id":"chatcmpl-llmsim","object":"chat.completion.chunk","choices":[{"index":0,"del\n\n'
)
"""A chunk cut off inside its JSON, for OpenAI streams that have no next frame to break."""


def is_openai(provider: str) -> bool:
    return provider in ("openai", "azure")


# ---------------------------------------------------------------------------------------------
# Status faults


def fault_error(
    fault: FaultDecision, request: GenerationRequest, *, verdict: Verdict | None = None, now_unix: float = 0.0
) -> ApiError | None:
    """The ApiError replacing the response for a status fault (None for other faults).

    `verdict`: the rate-limit verdict, for truthful numbers and headers (`rate_limit` from the
    stateful limiter); forced or random `rate_limit` faults without one quote `retryAfterS`.
    """
    kind = KINDS.get(fault.fault)
    if fault.fault is FaultType.PROMPT_FILTER and request.provider == "gemini":
        return None  # a 200 with `promptFeedback` (`substitute_answer`)
    if fault.fault is FaultType.MIDSTREAM_ERROR and not request.stream:
        kind = ErrorKind.SERVER_ERROR  # no stream to break: the request fails as a whole
        fault = dataclasses.replace(fault, fault=FaultType.SERVER_ERROR)
    if kind is None:
        return None
    headers: dict[str, str] = {}
    retry_after = fault.retry_after_s
    if verdict is not None:
        headers.update(ratelimit_headers(request.provider, verdict, now_unix))
        retry_after = verdict.retry_after_s
    if fault.fault in (FaultType.RATE_LIMIT, FaultType.OVERLOADED) and retry_after is not None:
        headers.update(retry_headers(retry_after))
    if fault.fault is FaultType.QUOTA:
        headers["x-should-retry"] = "false"
    message = _message(fault, request, verdict, retry_after)
    param = "messages" if fault.fault is FaultType.CONTEXT_LENGTH and is_openai(request.provider) else None
    return ApiError(kind, message, param=param, headers=headers)


def key_error(provider: str, *, missing: bool) -> ApiError:
    """The provider's 401 for a request without a key (`missing`) or with one that is not accepted
    (`faults.requireKey`). Gemini answers a missing key with 403 and a wrong one with 400."""
    if missing:
        return ApiError(ErrorKind.AUTHENTICATION, MISSING_KEY_MESSAGES.get(provider, ""))
    wrong = _OPENAI_MESSAGES[FaultType.AUTHENTICATION] if provider == "openai" else ""
    return ApiError(ErrorKind.INVALID_KEY, wrong)


def retry_headers(seconds: float) -> dict[str, str]:
    """`retry-after` (whole seconds, rounded up) and the exact `retry-after-ms` the SDKs prefer."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    return {"retry-after": str(math.ceil(ms / 1000)), "retry-after-ms": str(ms)}


def _context_numbers(fault: FaultDecision) -> tuple[int, int]:
    window = int(cast(int, fault.detail.get("context_window", 128_000)))
    used = int(cast(int, fault.detail.get("prompt_tokens", 0)))
    if used <= window:  # injected on a prompt that fits: quote a prompt that would not
        used += window
    return used, window


def _message(
    fault: FaultDecision, request: GenerationRequest, verdict: Verdict | None, retry_after: float | None
) -> str:
    provider, kind = request.provider, fault.fault
    if kind is FaultType.CONTEXT_LENGTH:
        used, window = _context_numbers(fault)
        if provider == "anthropic":
            return anthropic.context_length_message(used, window)
        if provider == "gemini":
            return gemini.context_length_message(used, window)
        if provider == "ollama":
            return ollama.context_length_message(used, window)
        return (
            f"This model's maximum context length is {window} tokens. However, your messages resulted in "
            f"{used} tokens. Please reduce the length of the messages."
        )
    if kind is FaultType.RATE_LIMIT and provider in ("openai", "azure", "anthropic"):
        return _rate_limit_message(request, verdict, retry_after or 0.0)
    if kind is FaultType.PERMISSION and provider == "openai":
        return f"Project does not have access to model `{request.model}`."
    if provider == "azure" and kind in _AZURE_OWN_WORDING:
        return ""
    if is_openai(provider):
        return _OPENAI_MESSAGES.get(kind, "")
    return ""  # the provider module's own wording ("Overloaded", "Resource has been exhausted", ...)


def _rate_limit_message(request: GenerationRequest, verdict: Verdict | None, retry_after: float) -> str:
    wait = f"{max(retry_after, 0.001):.3g}s"
    tokens = verdict is not None and verdict.limited_by == "tokens"
    limit = (verdict.limit_tokens if tokens else verdict.limit_requests) if verdict is not None else None
    if request.provider == "anthropic":
        what = "input tokens" if tokens else "requests"
        of = f" of {limit} {what} per minute" if limit is not None else ""
        return (
            f"This request would exceed the rate limit for your organization{of}. For details, refer to: "
            "https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. "
            "Please reduce the prompt length or the maximum tokens requested, or try again later."
        )
    if request.provider == "azure":
        operation = "ChatCompletions_Create" if request.operation == "chat" else "Completions_Create"
        return (
            f"Requests to the {operation} Operation under Azure OpenAI API have exceeded "
            f"{'token' if tokens else 'call'} rate limit of your current pricing tier. "
            f"Please retry after {math.ceil(max(retry_after, 1.0))} seconds."
        )
    if verdict is not None and verdict.too_large:
        return (
            f"Request too large for {request.model} on tokens per min (TPM): Limit {verdict.limit_tokens}, "
            f"Requested {verdict.cost_tokens}. The input or output tokens must be reduced in order to run "
            "successfully."
        )
    if verdict is not None and limit is not None:
        unit = "tokens per min (TPM)" if tokens else "requests per min (RPM)"
        used = limit - ((verdict.remaining_tokens if tokens else verdict.remaining_requests) or 0)
        requested = verdict.cost_tokens if tokens else 1
        return (
            f"Rate limit reached for {request.model} on {unit}: Limit {limit}, Used {used}, Requested "
            f"{requested}. Please try again in {wait}."
        )
    return f"Rate limit reached for {request.model} on requests per min (RPM). Please try again in {wait}."


def ratelimit_headers(
    provider: str, verdict: Verdict, now_unix: float, *, output: Verdict | None = None
) -> dict[str, str]:
    """The provider's rate-limit headers for a verdict: OpenAI `x-ratelimit-{limit,remaining,reset}-
    {requests,tokens}` (Go-style durations), Azure `x-ratelimit-remaining-{requests,tokens}` (all it
    sends), Anthropic `anthropic-ratelimit-*` (RFC 3339 instants); Gemini and Ollama send none.

    `output`: Anthropic's separate output-tokens bucket; then `input-tokens` reports the verdict's
    token bucket, `output-tokens` this one and `tokens` the more restrictive of the two (as the real
    API does). Without it, one token bucket serves all three families."""
    headers: dict[str, str] = {}
    if provider == "azure":
        if verdict.limit_requests is not None:
            headers["x-ratelimit-remaining-requests"] = str(verdict.remaining_requests)
        if verdict.limit_tokens is not None:
            headers["x-ratelimit-remaining-tokens"] = str(verdict.remaining_tokens)
    elif provider == "openai":
        if verdict.limit_requests is not None:
            headers["x-ratelimit-limit-requests"] = str(verdict.limit_requests)
            headers["x-ratelimit-remaining-requests"] = str(verdict.remaining_requests)
            headers["x-ratelimit-reset-requests"] = go_duration(verdict.reset_requests_s or 0.0)
        if verdict.limit_tokens is not None:
            headers["x-ratelimit-limit-tokens"] = str(verdict.limit_tokens)
            headers["x-ratelimit-remaining-tokens"] = str(verdict.remaining_tokens)
            headers["x-ratelimit-reset-tokens"] = go_duration(verdict.reset_tokens_s or 0.0)
    elif provider == "anthropic":
        headers.update(_anthropic_headers(verdict, now_unix, output))
    return headers


def _anthropic_headers(verdict: Verdict, now_unix: float, output: Verdict | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if verdict.limit_requests is not None:
        headers.update(anthropic.token_family_headers(
            "requests", verdict.limit_requests, verdict.remaining_requests or 0, verdict.reset_requests_s or 0.0,
            now_unix))  # fmt: skip
    main: dict[str, str] = {}
    if verdict.limit_tokens is not None:
        main = anthropic.token_family_headers(
            "tokens",
            verdict.limit_tokens,
            verdict.remaining_tokens or 0,
            verdict.reset_tokens_s or 0.0,
            now_unix,
        )
    out: dict[str, str] = {}
    if output is not None and output.limit_tokens is not None:
        out = anthropic.token_family_headers(
            "tokens",
            output.limit_tokens,
            output.remaining_tokens or 0,
            output.reset_tokens_s or 0.0,
            now_unix,
        )
    tighter = output is not None and bool(out) and _more_restrictive(output, verdict)
    families = {"tokens": out if tighter else main, "input-tokens": main, "output-tokens": out or main}
    for family, values in families.items():
        headers.update({k.replace("-tokens-", f"-{family}-", 1): v for k, v in values.items()})
    return headers


def _more_restrictive(output: Verdict, main: Verdict) -> bool:
    """Whether the output bucket is the tighter one (the smaller share left)."""
    if main.limit_tokens is None:
        return True
    share = (output.remaining_tokens or 0) / (output.limit_tokens or 1)
    return share < (main.remaining_tokens or 0) / main.limit_tokens


# ---------------------------------------------------------------------------------------------
# Timeout


def substitute_answer(fault: FaultDecision, request: GenerationRequest) -> BodyAnswer | None:
    """The answer replacing the model's that is not an error: `timeout`'s stall, Gemini's blocked
    prompt (`prompt_filter`); None for other faults."""
    if fault.fault is FaultType.PROMPT_FILTER and request.provider == "gemini":
        return gemini.blocked_prompt_answer(request, planner.prompt_tokens(request))
    return stall_answer(fault)


def stall_answer(fault: FaultDecision) -> BodyAnswer | None:
    """For `timeout`: send nothing, hold the connection for `stall_s`, then cut it."""
    if fault.fault is not FaultType.TIMEOUT:
        return None
    stall = float(cast(float, fault.detail.get("stall_s", 600.0)))
    return BodyAnswer(status=200, headers={}, body=b"", end="stall", stall_s=stall)


# ---------------------------------------------------------------------------------------------
# Stream faults


StreamEnd = Literal["continue", "eof", "abort"]
"""After a stream fault strikes: keep sending the rest, end the body normally, or cut the connection."""


def stream_strike(
    fault: FaultType, request: GenerationRequest, sent_frames: int, rest: tuple[Frame, ...]
) -> tuple[bytes, StreamEnd]:
    """What a stream fault writes where it strikes (after `sent_frames` frames; `rest`: the frames
    that would follow) and how the stream goes on: `disconnect` writes nothing and cuts the
    connection; `malformed_chunk` writes the provider's broken frame and continues; `midstream_error`
    writes the provider's in-stream error and ends the body. Rendered answers (`apply`) and
    forwarded ones (the proxy's relay) strike through this one function."""
    if fault is FaultType.DISCONNECT:
        return b"", "abort"
    if fault is FaultType.MALFORMED_CHUNK:
        return malformed_frame(request, rest), "continue"
    return midstream_error_frame(request, sent_frames), "eof"


def apply(answer: Answer, fault: FaultDecision | None, request: GenerationRequest) -> Answer:
    """Transform a rendered success answer for `disconnect`, `malformed_chunk` and `midstream_error`
    (other faults, and None, leave it unchanged)."""
    if fault is None or fault.fault not in STREAM_FAULTS:
        return answer
    if isinstance(answer, BodyAnswer):
        return _apply_body(answer, fault)
    kept, rest = split_frames(answer.frames, fault.after_tokens)
    at = rest[0].at_s if rest else (kept[-1].at_s if kept else 0.0)
    data, end = stream_strike(fault.fault, request, len(kept), rest)
    if end == "abort":
        return dataclasses.replace(answer, frames=kept, end="abort")
    struck = Frame(at, data, fault.after_tokens)
    if end == "continue":
        return dataclasses.replace(answer, frames=(*kept, struck, *rest))
    return dataclasses.replace(answer, frames=(*kept, struck), end="eof")


def split_frames(frames: tuple[Frame, ...], after_tokens: int) -> tuple[tuple[Frame, ...], tuple[Frame, ...]]:
    """(frames sent before token `after_tokens`, the rest): the cut is a prefix of the stream, so
    whatever precedes the first token (role chunk, `message_start`) is kept."""
    for i, frame in enumerate(frames):
        if frame.token >= after_tokens:
            return frames[:i], frames[i:]
    return frames, ()


def _apply_body(answer: BodyAnswer, fault: FaultDecision) -> BodyAnswer:
    """A whole body meets a stream fault: `disconnect` sends half of it and cuts the connection,
    `malformed_chunk` sends it truncated (`midstream_error` on a body is a status fault)."""
    if fault.fault is FaultType.DISCONNECT:
        return dataclasses.replace(answer, end="abort")  # half the body, then the connection is cut
    return dataclasses.replace(answer, body=answer.body[: max(1, len(answer.body) // 2)])


def midstream_error_frame(request: GenerationRequest, sent_frames: int) -> bytes:
    """The provider's in-stream error frame."""
    provider = request.provider
    kind = MIDSTREAM_KIND.get(provider, ErrorKind.SERVER_ERROR)
    if is_openai(provider):
        message = _OPENAI_MESSAGES[FaultType.SERVER_ERROR]
        if request.operation == "responses":
            payload = {"type": "error", "code": "server_error", "message": message, "param": None}
            return sse.event("error", {**payload, "sequence_number": sent_frames})
        inner = openai_common.error_answer(ApiError(kind, message), "")
        return b"data: " + inner.body + b"\n\n"
    if provider == "anthropic":
        return anthropic.midstream_error_frame(ApiError(kind, ""))
    if provider == "gemini":
        return gemini.midstream_error_frame(ApiError(kind, ""), request)
    return ollama.midstream_error_frame(ApiError(kind, ""))


def malformed_frame(request: GenerationRequest, rest: tuple[Frame, ...]) -> bytes:
    """The provider's broken frame; for OpenAI, the next frame with its JSON cut in half."""
    if request.provider == "anthropic":
        return anthropic.malformed_frame()
    if request.provider == "gemini":
        return gemini.malformed_frame(request)
    if request.provider == "ollama":
        return ollama.malformed_frame()
    nxt = next((f.data for f in rest if f.data.startswith(b"data: {") or b"\ndata: {" in f.data), None)
    if nxt is None:
        return OPENAI_MALFORMED
    body = nxt.rstrip(b"\n")
    return body[: max(len(body) // 2, body.index(b"{") + 2)] + b"\n\n"


def with_headers(answer: Answer, headers: dict[str, str]) -> Answer:
    """The answer with extra response headers (e.g. rate-limit headers on a success)."""
    if not headers:
        return answer
    return dataclasses.replace(answer, headers={**answer.headers, **headers})
