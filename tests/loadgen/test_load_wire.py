"""Client-side wire formats: requests per provider, stream decoding, error classification."""

from __future__ import annotations

import json

import pytest

from llmsim.api.scenario import Target, TargetProvider
from llmsim.loadgen import wire
from llmsim.loadgen.requestmix import PlannedRequest
from llmsim.loadgen.wire import ErrorType

REQ = PlannedRequest(index=0, intended_s=0.0, prompt="hello there", prompt_tokens=2, max_tokens=32, stream=True,
                     tool_call=False)  # fmt: skip


def call_for(provider: str, **kw: object) -> wire.HttpCall:
    target = Target(url="http://h:1/", provider=TargetProvider(provider), model="m-1")
    req = PlannedRequest(**{**REQ.__dict__, **kw})
    return wire.build_call(target, req, "sk-secret")


def test_openai_request_streams_with_usage_and_bearer_auth() -> None:
    call = call_for("openai")
    body = json.loads(call.body)
    assert call.url == "http://h:1/v1/chat/completions"
    assert call.headers["authorization"] == "Bearer sk-secret"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 32 and body["messages"][-1] == {"role": "user", "content": "hello there"}


def test_azure_request_uses_deployment_path_api_version_and_api_key() -> None:
    call = call_for("azure", stream=False)
    assert call.url == "http://h:1/openai/deployments/m-1/chat/completions?api-version=2024-10-21"
    assert call.headers["api-key"] == "sk-secret" and "authorization" not in call.headers
    assert "stream_options" not in json.loads(call.body)


def test_anthropic_request() -> None:
    call = call_for("anthropic", tool_call=True)
    body = json.loads(call.body)
    assert call.url == "http://h:1/v1/messages"
    assert call.headers["x-api-key"] == "sk-secret" and call.headers["anthropic-version"]
    assert (
        body["stream"] is True and body["tool_choice"] == {"type": "any"} and body["tools"][0]["input_schema"]
    )


def test_gemini_request_paths_for_stream_and_not() -> None:
    assert call_for("gemini").url == "http://h:1/v1beta/models/m-1:streamGenerateContent?alt=sse"
    plain = call_for("gemini", stream=False)
    assert plain.url == "http://h:1/v1beta/models/m-1:generateContent"
    assert plain.headers["x-goog-api-key"] == "sk-secret"
    assert json.loads(plain.body)["generationConfig"] == {"maxOutputTokens": 32}


def test_ollama_request() -> None:
    call = call_for("ollama", stream=False)
    body = json.loads(call.body)
    assert call.url == "http://h:1/api/chat"
    assert body["stream"] is False and body["options"] == {"num_predict": 32}


def test_sse_decoder_handles_any_split_and_crlf() -> None:
    stream = b'event: a\r\ndata: {"x":1}\r\n\r\n: comment\n\ndata: {"y":\ndata: 2}\n\ndata: [DONE]\n\n'
    for cut in range(1, len(stream)):
        decoder = wire.StreamDecoder(ndjson=False)
        events = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert events == [("a", '{"x":1}'), ("", '{"y":\n2}'), ("", "[DONE]")], cut


def test_ndjson_decoder_buffers_partial_lines() -> None:
    decoder = wire.StreamDecoder(ndjson=True)
    assert decoder.feed(b'{"a":1}\n{"b"') == [("", '{"a":1}')]
    assert decoder.feed(b":2}\n\n") == [("", '{"b":2}')]


@pytest.mark.parametrize(
    ("provider", "event", "data", "tokens", "done"),
    [
        ("openai", "", '{"choices":[{"delta":{"content":"Hi"}}]}', 1, False),
        ("openai", "", "[DONE]", 0, True),
        (
            "anthropic",
            "content_block_delta",
            '{"type":"content_block_delta","delta":{"text":"Hi"}}',
            1,
            False,
        ),
        ("anthropic", "message_stop", '{"type":"message_stop"}', 0, True),
        ("anthropic", "ping", '{"type":"ping"}', 0, False),
        ("gemini", "", '{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}', 1, False),
        (
            "gemini",
            "",
            '{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}]}',
            1,
            True,
        ),
        ("ollama", "", '{"message":{"content":"Hi"},"done":false}', 1, False),
        ("ollama", "", '{"message":{"content":""},"done":true,"eval_count":5}', 0, True),
    ],
)
def test_stream_events_per_provider(provider: str, event: str, data: str, tokens: int, done: bool) -> None:
    chunk = wire.interpret(TargetProvider(provider), event, data)
    assert chunk.error is None
    assert (chunk.tokens, chunk.done) == (tokens, done)


@pytest.mark.parametrize(
    ("provider", "event", "data"),
    [
        ("openai", "", '{"error":{"message":"boom","type":"server_error"}}'),
        ("anthropic", "error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
        ("gemini", "", '{"error":{"code":503,"message":"unavailable","status":"UNAVAILABLE"}}'),
        ("ollama", "", '{"error":"model crashed"}'),
    ],
)
def test_in_stream_errors_are_midstream_errors(provider: str, event: str, data: str) -> None:
    chunk = wire.interpret(TargetProvider(provider), event, data)
    assert chunk.error is not None and chunk.error[0] == ErrorType.MIDSTREAM_ERROR


def test_garbage_stream_events_are_malformed() -> None:
    for data in ("<html>", "[1,2]", '{"choices": 5}'):
        chunk = wire.interpret(TargetProvider.OPENAI, "", data)
        assert chunk.error is not None and chunk.error[0] == ErrorType.MALFORMED, data


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}', "rate_limit"),
        (429, '{"error":{"message":"You exceeded your current quota","type":"insufficient_quota"}}', "quota"),
        (400, '{"error":{"message":"maximum context length","code":"context_length_exceeded"}}', "context_length"),
        (401, '{"error":{"message":"bad key","code":"invalid_api_key"}}', "auth"),
        (529, '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "overloaded"),
        (400, '{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}',
         "context_length"),
        (429, '{"error":{"code":429,"message":"exhausted","status":"RESOURCE_EXHAUSTED"}}', "rate_limit"),
        (503, '{"error":"server busy, please try again."}', "overloaded"),
        (500, "<html>oops</html>", "server_error"),
        (404, '{"error":"model not found"}', "not_found"),
        (418, "", "http_error"),
    ],
)  # fmt: skip
def test_error_shapes_are_classified(status: int, body: str, kind: str) -> None:
    got, message = wire.classify_error(status, body.encode())
    assert got == ErrorType(kind)
    assert message


def test_whole_bodies_parse_or_fail_clearly() -> None:
    ok = wire.parse_body(
        TargetProvider.OPENAI, b'{"choices":[{"message":{"content":"a b"}}],"usage":{"completion_tokens":2}}'
    )
    assert ok.output_tokens == 2 and ok.text == "a b"
    with pytest.raises(ValueError, match="not JSON"):
        wire.parse_body(TargetProvider.ANTHROPIC, b"<html>")
    with pytest.raises(ValueError, match="unexpected response shape"):
        wire.parse_body(TargetProvider.GEMINI, b'{"foo": 1}')
