"""Rendering fault decisions: errors with their headers, stalls, and stream transformations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmsim.api.faults import FaultType, RateLimits
from llmsim.providers import fault_render
from llmsim.providers.base import TRAILER, BodyAnswer, ErrorKind, Frame, StreamAnswer
from llmsim.simulation import ratelimit
from llmsim.simulation.plan import FaultDecision
from llmsim.simulation.ratelimit import BucketLimits, BucketState
from llmsim.simulation.request import GenerationRequest, Message

PROVIDERS = ("openai", "azure", "anthropic", "gemini", "ollama")


def req(provider: str = "openai", *, stream: bool = True, operation: Any = "chat") -> GenerationRequest:
    return GenerationRequest(
        provider=provider, operation=operation, model="m", messages=(Message("user", "hi"),), stream=stream
    )


def fault(kind: FaultType, **kw: Any) -> FaultDecision:
    return FaultDecision(fault=kind, reason="forced", **kw)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("kind", "error_kind"),
    [
        (FaultType.RATE_LIMIT, ErrorKind.RATE_LIMIT),
        (FaultType.QUOTA, ErrorKind.QUOTA),
        (FaultType.OVERLOADED, ErrorKind.OVERLOADED),
        (FaultType.SERVER_ERROR, ErrorKind.SERVER_ERROR),
        (FaultType.CONTEXT_LENGTH, ErrorKind.CONTEXT_LENGTH),
    ],
)
def test_status_faults_become_provider_errors_with_the_right_retry_hints(
    provider: str, kind: FaultType, error_kind: ErrorKind
) -> None:
    retry = 1.5 if kind in (FaultType.RATE_LIMIT, FaultType.OVERLOADED) else None
    error = fault_render.fault_error(fault(kind, retry_after_s=retry), req(provider))
    assert error is not None and error.kind is error_kind
    if retry is not None:
        assert error.headers["retry-after"] == "2" and error.headers["retry-after-ms"] == "1500"
    else:
        assert "retry-after" not in error.headers
    assert ("x-should-retry" in error.headers) == (kind is FaultType.QUOTA)
    if kind is FaultType.QUOTA:
        assert error.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    "kind", [FaultType.DISCONNECT, FaultType.MALFORMED_CHUNK, FaultType.SLOW_STREAM, FaultType.TIMEOUT]
)
def test_other_faults_are_not_status_errors(kind: FaultType) -> None:
    assert fault_render.fault_error(fault(kind), req()) is None


def test_a_midstream_error_without_a_stream_is_a_server_error() -> None:
    error = fault_render.fault_error(fault(FaultType.MIDSTREAM_ERROR), req(stream=False))
    assert error is not None and error.kind is ErrorKind.SERVER_ERROR
    assert fault_render.fault_error(fault(FaultType.MIDSTREAM_ERROR), req(stream=True)) is None


@pytest.mark.parametrize(
    ("provider", "wording"),
    [
        ("openai", "maximum context length is 1000 tokens. However, your messages resulted in 1500 tokens"),
        ("anthropic", "prompt is too long: 1500 tokens > 1000 maximum"),
        ("gemini", "The input token count (1500) exceeds the maximum number of tokens allowed (1000)."),
        ("ollama", "the input length (1500 tokens) exceeds the context length (1000 tokens)"),
    ],
)
def test_context_length_messages_quote_the_numbers(provider: str, wording: str) -> None:
    decision = fault(FaultType.CONTEXT_LENGTH, detail={"prompt_tokens": 1500, "context_window": 1000})
    error = fault_render.fault_error(decision, req(provider))
    assert error is not None and wording in error.message


def limited_verdict(rpm: int = 3) -> ratelimit.Verdict:
    lim = BucketLimits.of(RateLimits(requests_per_minute=rpm, tokens_per_minute=1000))
    return ratelimit.take(BucketState(requests=0.0, tokens=1000.0, at=0.0), lim, 10, now=0.0)[1]


def test_a_rate_limit_verdict_gives_openai_its_wording_and_x_ratelimit_headers() -> None:
    verdict = limited_verdict()
    decision = FaultDecision(FaultType.RATE_LIMIT, "rate_limit", retry_after_s=verdict.retry_after_s)
    error = fault_render.fault_error(decision, req("openai"), verdict=verdict, now_unix=0.0)
    assert error is not None
    assert (
        "on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s." in error.message
    )
    assert error.headers["x-ratelimit-limit-requests"] == "3"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert error.headers["x-ratelimit-limit-tokens"] == "1000"
    assert error.headers["retry-after"] == "20" and error.headers["retry-after-ms"] == "20000"
    assert "x-should-retry" not in error.headers


def test_anthropic_rate_limit_headers_carry_rfc3339_resets() -> None:
    verdict = limited_verdict()
    headers = fault_render.ratelimit_headers("anthropic", verdict, now_unix=1_800_000_000.0)
    assert headers["anthropic-ratelimit-requests-limit"] == "3"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-requests-reset"] == "2027-01-15T08:01:00Z"
    assert headers["anthropic-ratelimit-tokens-limit"] == "1000"


def test_unlimited_dimensions_and_header_less_providers_send_no_headers() -> None:
    lim = BucketLimits.of(RateLimits(requests_per_minute=10))
    verdict = ratelimit.take(None, lim, 5, now=0.0)[1]
    openai = fault_render.ratelimit_headers("openai", verdict, 0.0)
    anthropic = fault_render.ratelimit_headers("anthropic", verdict, 0.0)
    assert set(openai) == {
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    }
    assert all(k.startswith("anthropic-ratelimit-requests-") for k in anthropic) and anthropic
    assert fault_render.ratelimit_headers("gemini", verdict, 0.0) == {}
    assert fault_render.ratelimit_headers("ollama", verdict, 0.0) == {}


@pytest.mark.parametrize(
    ("seconds", "after", "after_ms"),
    [(0.0001, "1", "1"), (1.0, "1", "1000"), (0.25, "1", "250"), (2.0004, "3", "2001")],
)
def test_retry_headers_never_round_down(seconds: float, after: str, after_ms: str) -> None:
    assert fault_render.retry_headers(seconds) == {"retry-after": after, "retry-after-ms": after_ms}


def test_timeout_is_a_stall_of_the_configured_length() -> None:
    stall = fault_render.stall_answer(fault(FaultType.TIMEOUT, detail={"stall_s": 3.0}))
    assert stall is not None and stall.end == "stall" and stall.stall_s == 3.0 and stall.body == b""
    assert fault_render.stall_answer(fault(FaultType.SERVER_ERROR)) is None


def openai_stream(tokens: int = 6) -> StreamAnswer:
    frames = [Frame(0.1, b'data: {"role":"assistant"}\n\n', -1)]
    frames += [
        Frame(0.1 + k * 0.01, b'data: {"choices":[{"delta":{"content":"t%d"}}]}\n\n' % k, k)
        for k in range(tokens)
    ]
    frames += [
        Frame(0.2, b'data: {"finish_reason":"stop"}\n\n', TRAILER),
        Frame(0.2, b"data: [DONE]\n\n", TRAILER),
    ]
    return StreamAnswer(200, {"Content-Type": "text/event-stream"}, tuple(frames))


def test_split_frames_keeps_a_prefix_up_to_the_token() -> None:
    kept, rest = fault_render.split_frames(openai_stream().frames, 2)
    assert [f.token for f in kept] == [-1, 0, 1] and rest[0].token == 2
    kept, rest = fault_render.split_frames(openai_stream().frames, 100)
    assert [f.token for f in kept][-1] == 5 and all(f.token == TRAILER for f in rest)


def test_disconnect_cuts_the_stream_after_k_tokens_and_aborts() -> None:
    cut = fault_render.apply(openai_stream(), fault(FaultType.DISCONNECT, after_tokens=3), req())
    assert isinstance(cut, StreamAnswer) and cut.end == "abort"
    assert [f.token for f in cut.frames] == [-1, 0, 1, 2]


def test_midstream_error_appends_the_openai_error_frame_when_the_next_token_was_due() -> None:
    out = fault_render.apply(openai_stream(), fault(FaultType.MIDSTREAM_ERROR, after_tokens=2), req())
    assert isinstance(out, StreamAnswer) and out.end == "eof"
    last = out.frames[-1]
    assert last.at_s == pytest.approx(0.12) and [f.token for f in out.frames[:-1]] == [-1, 0, 1]
    payload = json.loads(last.data.removeprefix(b"data: "))
    assert payload["error"]["type"] == "server_error" and payload["error"]["message"]


def test_malformed_chunk_inserts_a_broken_frame_and_keeps_the_rest() -> None:
    out = fault_render.apply(openai_stream(), fault(FaultType.MALFORMED_CHUNK, after_tokens=2), req())
    assert isinstance(out, StreamAnswer) and len(out.frames) == len(openai_stream().frames) + 1
    broken = out.frames[3].data
    assert broken.startswith(b"data: {") and broken.endswith(b"\n\n")
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.removeprefix(b"data: "))


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "ollama"])
def test_other_providers_use_their_own_frames(provider: str) -> None:
    error = fault_render.midstream_error_frame(req(provider), 3)
    broken = fault_render.malformed_frame(req(provider), ())
    assert error and broken and error != broken
    if provider == "anthropic":
        assert error.startswith(b"event: error\n")


def test_responses_streams_get_an_error_event_with_the_next_sequence_number() -> None:
    frame = fault_render.midstream_error_frame(req("openai", operation="responses"), 7)
    name, data = frame.split(b"\n", 1)
    assert name == b"event: error"
    assert json.loads(data.removeprefix(b"data: "))["sequence_number"] == 7


def test_non_streamed_equivalents_cut_or_truncate_the_body() -> None:
    body = BodyAnswer(
        200, {"Content-Type": "application/json"}, b'{"id":"x","choices":[{"text":"hello"}]}', at_s=0.3
    )
    cut = fault_render.apply(body, fault(FaultType.DISCONNECT), req(stream=False))
    assert isinstance(cut, BodyAnswer) and cut.end == "abort" and cut.body == body.body
    broken = fault_render.apply(body, fault(FaultType.MALFORMED_CHUNK), req(stream=False))
    assert isinstance(broken, BodyAnswer) and broken.end == "eof" and len(broken.body) < len(body.body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.body)


def test_no_fault_and_planner_faults_leave_the_answer_alone() -> None:
    stream = openai_stream()
    assert fault_render.apply(stream, None, req()) is stream
    assert fault_render.apply(stream, fault(FaultType.SLOW_STREAM), req()) is stream


def test_with_headers_adds_headers_without_dropping_any() -> None:
    out = fault_render.with_headers(openai_stream(), {"x-ratelimit-limit-requests": "3"})
    assert out.headers == {"Content-Type": "text/event-stream", "x-ratelimit-limit-requests": "3"}
