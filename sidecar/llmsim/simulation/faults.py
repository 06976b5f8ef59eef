"""Fault decisions: which fault (if any) a request meets. Pure.

Order of precedence (the first that applies wins):

1. a forced fault from the `x-llmsim-fault` header (`none` forces a clean answer from the
   injected-fault rules below);
2. a real context-window overflow (the prompt is longer than `models.contextWindow`), which no
   header can switch off except forcing another fault;
3. time windows (`faults.windows`, in order), each hitting a share of the requests inside it;
4. "fail the first N attempts" (`faults.failFirst`);
5. the per-type probabilities (`faults.rates`), which are mutually exclusive.

Every probabilistic choice is a pure function of (seed, request key, attempt, rule): a stable
hash, never a shared random stream, so the same request meets the same fate on every replica,
in every rerun and regardless of what other traffic arrived in between. The request key is the
client's request id when it sent one, else a hash of the conversation (see `request_key`).

Stateful rate limiting is not decided here: see `simulation/ratelimit.py`.
"""

from __future__ import annotations

import hashlib
import json

from llmsim.api import schedule
from llmsim.api.faults import FaultParams, FaultSpec, FaultType, FaultWindow
from llmsim.api.profile import SimulationProfileSpec
from llmsim.simulation import planner, request_memo
from llmsim.simulation.plan import FaultDecision
from llmsim.simulation.request import GenerationRequest

STATUS_FAULTS = frozenset(
    {
        FaultType.RATE_LIMIT,
        FaultType.QUOTA,
        FaultType.OVERLOADED,
        FaultType.SERVER_ERROR,
        FaultType.CONTEXT_LENGTH,
        FaultType.AUTHENTICATION,
        FaultType.PERMISSION,
        FaultType.PROMPT_FILTER,
    }
)
"""Faults that replace the whole response with an HTTP error status (Gemini answers
`prompt_filter` with a blocked-prompt body instead, see `providers.fault_render`)."""

STREAM_FAULTS = frozenset({FaultType.DISCONNECT, FaultType.MALFORMED_CHUNK, FaultType.MIDSTREAM_ERROR})
"""Faults that strike after `after_tokens` tokens of an otherwise normal answer."""

AFTER_TOKEN_FAULTS = STREAM_FAULTS | {FaultType.CONTENT_FILTER}
"""Faults that strike after `after_tokens` tokens (the content filter cuts the reply there)."""

REPLACING_FAULTS = STATUS_FAULTS | {FaultType.TIMEOUT}
"""Faults that answer instead of the model: an error status, or (`timeout`) nothing at all."""

RETRY_AFTER_FAULTS = frozenset({FaultType.RATE_LIMIT, FaultType.OVERLOADED})
"""Faults whose answer carries a `retry-after` hint."""

_FAULT_ORDER: tuple[FaultType, ...] = tuple(f for f in FaultType if f is not FaultType.NONE)
"""Fixed order in which `rates` are laid out on [0, 1) (independent of the profile's key order)."""


def parse_forced(value: str | None) -> FaultType | None:
    """The fault named by an `x-llmsim-fault` header value (None when absent or empty).

    Raises ValueError naming the accepted values when the header holds anything else.
    """
    if value is None or not value.strip():
        return None
    name = value.strip().lower()
    try:
        return FaultType(name)
    except ValueError:
        known = ", ".join(f.value for f in FaultType)
        raise ValueError(
            f"x-llmsim-fault: unknown fault {value.strip()!r}; expected one of: {known}"
        ) from None


def conversation_id(request: GenerationRequest) -> str:
    """A stable hash of what makes two requests 'the same conversation' (provider, operation,
    model, messages, embedding inputs). Retries of one call share it; other calls differ.
    Computed once per request object (`request_memo`)."""
    return request_memo.remembered(request, "conversation_id", _conversation_id)


def _conversation_id(request: GenerationRequest) -> str:
    doc = [
        request.provider,
        request.operation,
        request.model,
        [[m.role, m.text] for m in request.messages],
        list(request.inputs),
    ]
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def opaque_conversation_id(provider: str, path: str, body: bytes) -> str:
    """The conversation identity of a request nobody parsed (a route the simulator does not know,
    met by the proxy): a stable hash of its provider, path and body."""
    raw = provider.encode() + b"\x1f" + path.encode() + b"\x1f" + body
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def request_key(spec: FaultSpec, request: GenerationRequest, conversation: str | None = None) -> str:
    """The identity a request's fault decisions (and attempt counter) are keyed by.

    `failFirst.key: conversation` keys by the conversation hash; otherwise the client's request
    id is used when it sent one (`rid:` prefix), and the conversation hash when it did not.
    `conversation` replaces `conversation_id(request)` (see `opaque_conversation_id`).
    """
    by_conversation = spec.fail_first is not None and spec.fail_first.key == "conversation"
    if request.client_request_id and not by_conversation:
        return f"rid:{request.client_request_id}"
    return f"conv:{conversation or conversation_id(request)}"


def unit(seed: int, key: str, attempt: int, rule: str) -> float:
    """A uniform number in [0, 1), a pure function of its arguments (a 64-bit BLAKE2b hash)."""
    raw = f"{seed}\x1f{key}\x1f{attempt}\x1f{rule}".encode()
    digest = hashlib.blake2b(raw, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def window_open(window: FaultWindow, elapsed_s: float, now_unix: float) -> bool:
    """Whether `window` is open: `elapsed_s` seconds after the profile became active (relative
    windows), at Unix time `now_unix` (windows with `startAt` or `cron`). See `api/schedule.py`."""
    return schedule.is_open(window, elapsed_s=elapsed_s, now_unix=now_unix)


def decision(fault: FaultType, reason: str, params: FaultParams, **detail: object) -> FaultDecision:
    """A FaultDecision for `fault`, with the knobs of `params` filled in where they apply."""
    after = params.after_tokens if fault in AFTER_TOKEN_FAULTS else 0
    retry_after = params.retry_after_s if fault in RETRY_AFTER_FAULTS else None
    extra: dict[str, object] = dict(detail)
    if fault is FaultType.SLOW_STREAM:
        extra.setdefault("factor", params.slow_stream_factor)
    if fault is FaultType.TIMEOUT:
        extra.setdefault("stall_s", params.timeout_s)
    return FaultDecision(
        fault=fault, reason=reason, after_tokens=after, retry_after_s=retry_after, detail=extra
    )


def context_overflow(spec: SimulationProfileSpec, request: GenerationRequest) -> FaultDecision | None:
    """`context_length` when the prompt does not fit the model's context window (reason `context`)."""
    if request.operation == "count_tokens":
        return None
    used = planner.prompt_tokens(request)
    window = spec.models.context_window
    if used <= window:
        return None
    return decision(
        FaultType.CONTEXT_LENGTH, "context", spec.faults.params, prompt_tokens=used, context_window=window
    )


def decide(
    spec: SimulationProfileSpec,
    request: GenerationRequest,
    *,
    elapsed_s: float,
    now_unix: float,
    attempt: int,
    forced: FaultType | None,
    seed: int,
    key: str | None = None,
) -> FaultDecision | None:
    """The injected fault this request meets, or None for a clean answer. Pure.

    `elapsed_s`: seconds since the profile became active (relative windows); `now_unix`: the wall
    clock (windows with `startAt` or `cron`). `attempt`: how many
    earlier requests with the same `key` this process has seen (0 for the first). `forced`: the
    parsed `x-llmsim-fault` header. `seed`: the profile's (or the request's) seed. `key`: the
    request key (default: `request_key(spec.faults, request)`).
    """
    faults = spec.faults
    params = faults.params
    if forced is not None and forced is not FaultType.NONE:
        return _with_context(decision(forced, "forced", params), spec, request)
    overflow = context_overflow(spec, request)
    if overflow is not None:
        return overflow
    if forced is FaultType.NONE:
        return None
    key = key if key is not None else request_key(faults, request)

    for index, window in enumerate(faults.windows):
        if (
            window_open(window, elapsed_s, now_unix)
            and unit(seed, key, attempt, f"window{index}") < window.probability
        ):
            return _with_context(decision(window.fault, "window", params, window=index), spec, request)

    if faults.fail_first is not None and attempt < faults.fail_first.attempts:
        return _with_context(decision(faults.fail_first.fault, "fail_first", params), spec, request)

    if faults.rates:
        u = unit(seed, key, attempt, "rates")
        edge = 0.0
        for fault in _FAULT_ORDER:
            edge += faults.rates.get(fault, 0.0)
            if u < edge:
                return _with_context(decision(fault, "rate", params), spec, request)
    return None


def _with_context(
    found: FaultDecision, spec: SimulationProfileSpec, request: GenerationRequest
) -> FaultDecision:
    """Add the numbers a context-length message quotes (the prompt is made to look too long)."""
    if found.fault is not FaultType.CONTEXT_LENGTH:
        return found
    detail = {
        **found.detail,
        "prompt_tokens": planner.prompt_tokens(request),
        "context_window": spec.models.context_window,
    }
    return FaultDecision(found.fault, found.reason, found.after_tokens, found.retry_after_s, detail)
