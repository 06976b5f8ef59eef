"""The official `anthropic` SDK against a real simulator on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from simserver import FAST, SimServer, profile_from

USER: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]
WEATHER: Any = {"name": "get_weather", "description": "Weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip
FIXED = {**FAST, "content": {"mode": "fixed", "text": "The answer is 42. END of the story."}}


def client(server: SimServer, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0, **kw)


def counting_client(server: SimServer, sent: list[str], **kw: Any) -> anthropic.Anthropic:
    def hook(request: Any) -> None:
        sent.append(str(request.url))

    http = anthropic.DefaultHttpxClient(event_hooks={"request": [hook]})
    return anthropic.Anthropic(base_url=server.url, api_key="k", http_client=http, **kw)


def test_message_non_streaming(sim_server: SimServer) -> None:
    message = client(sim_server).messages.create(
        model="claude-sonnet-4", max_tokens=100, system="Be brief.", messages=USER
    )
    assert message.type == "message" and message.role == "assistant" and message.model == "claude-sonnet-4"
    assert message.content[0].type == "text" and message.content[0].text
    assert (
        message.stop_reason == "end_turn"
        and message.usage.output_tokens == 12
        and message.usage.input_tokens > 0
    )
    assert message._request_id and message._request_id.startswith("req_")


def test_streamed_text_and_usage_match_the_non_streamed_answer(sim_server: SimServer) -> None:
    c = client(sim_server)
    plain = c.messages.create(model="c", max_tokens=100, messages=USER)
    with c.messages.stream(model="c", max_tokens=100, messages=USER) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) == 12 and "".join(texts) == final.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens == 12
    assert final.usage.input_tokens == plain.usage.input_tokens


def test_raw_stream_has_event_lines_and_request_id(sim_server: SimServer) -> None:
    with client(sim_server).messages.with_streaming_response.create(
        model="c", max_tokens=100, messages=USER, stream=True
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream") and r.headers[
            "request-id"
        ].startswith("req_")
        lines = [line for line in r.iter_lines() if line]
    names = [line[7:] for line in lines if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert len(names) == len([line for line in lines if line.startswith("data: ")])


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_forced_tool_use_streaming_and_not(sim_server: SimServer, choice: Any) -> None:
    c = client(sim_server)
    message = c.messages.create(model="c", max_tokens=100, messages=USER, tools=[WEATHER], tool_choice=choice)
    block = message.content[0]
    assert message.stop_reason == "tool_use" and block.type == "tool_use" and isinstance(block.input, dict)
    assert isinstance(block.input["city"], str)
    with c.messages.stream(
        model="c", max_tokens=100, messages=USER, tools=[WEATHER], tool_choice=choice
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].type == "tool_use"
    assert isinstance(final.content[0].input, dict) and "city" in final.content[0].input


def test_tool_choice_none_answers_with_text(sim_server: SimServer) -> None:
    message = client(sim_server).messages.create(
        model="c", max_tokens=100, messages=USER, tools=[WEATHER], tool_choice={"type": "none"}
    )
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"


def test_stop_sequence_is_reported(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(FIXED)
    c = client(server)
    message = c.messages.create(model="c", max_tokens=100, messages=USER, stop_sequences=["END", "nothing"])
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "END"
    assert message.content[0].text == "The answer is 42. "  # type: ignore[union-attr]
    with c.messages.stream(model="c", max_tokens=100, messages=USER, stop_sequences=["END"]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "END"


def test_max_tokens_cuts_the_answer(sim_server: SimServer) -> None:
    message = client(sim_server).messages.create(model="c", max_tokens=4, messages=USER)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 4


def test_count_tokens_matches_the_message_usage(sim_server: SimServer) -> None:
    c = client(sim_server)
    counted = c.messages.count_tokens(model="c", messages=USER, system="Be brief.")
    message = c.messages.create(model="c", max_tokens=10, messages=USER, system="Be brief.")
    assert counted.input_tokens == message.usage.input_tokens > 0


def test_missing_max_tokens_is_an_anthropic_400(sim_server: SimServer) -> None:
    r = httpx.post(
        sim_server.url + "/v1/messages", json={"model": "c", "messages": USER}, headers={"x-api-key": "k"}
    )
    assert r.status_code == 400 and r.headers["request-id"].startswith("req_")
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"] == "max_tokens: Field required"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "sk-ant-1", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer sk-ant-1", "anthropic-version": "2026-10-21"},
        {"x-api-key": "sk-ant-1"},
    ],
)
def test_both_auth_styles_and_any_version_are_accepted(
    sim_server: SimServer, headers: dict[str, str]
) -> None:
    body = {"model": "c", "max_tokens": 5, "messages": USER}
    r = httpx.post(sim_server.url + "/v1/messages", json=body, headers=headers)
    assert r.status_code == 200 and r.json()["type"] == "message"


def test_auth_token_client_is_accepted(sim_server: SimServer) -> None:
    c = anthropic.Anthropic(base_url=sim_server.url, auth_token="oauth-token", max_retries=0)
    assert c.messages.create(model="c", max_tokens=5, messages=USER).type == "message"


@pytest.mark.parametrize(
    ("fault", "exc", "status"),
    [
        ("overloaded", anthropic.OverloadedError, 529),
        ("rate_limit", anthropic.RateLimitError, 429),
        ("server_error", anthropic.InternalServerError, 500),
        ("context_length", anthropic.BadRequestError, 400),
    ],
)
def test_forced_faults_raise_the_real_sdk_class_with_one_request(
    sim_server: SimServer, fault: str, exc: type[anthropic.APIStatusError], status: int
) -> None:
    sent: list[str] = []
    c = counting_client(sim_server, sent, max_retries=0)
    with pytest.raises(exc) as caught:
        c.messages.create(model="c", max_tokens=5, messages=USER, extra_headers={"x-llmsim-fault": fault})
    assert caught.value.status_code == status and len(sent) == 1
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"


def test_invalid_json_body_is_an_anthropic_400(sim_server: SimServer) -> None:
    r = httpx.post(
        sim_server.url + "/v1/messages",
        content=b"{nope",
        headers={"x-api-key": "k", "content-type": "application/json"},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert json.dumps(body)  # a JSON document, not a traceback


def test_model_list_in_anthropic_shape(sim_server: SimServer) -> None:
    c = client(sim_server)
    ids = [m.id for m in c.models.list()]
    assert "claude-sonnet-4" in ids
    model = c.models.retrieve("claude-sonnet-4")
    assert model.type == "model" and model.id == "claude-sonnet-4"


def test_seed_and_profile_headers_are_honoured(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(FAST, profile_from(FIXED, name="fixed"))
    c = client(server)

    def text(**headers: str) -> str:
        message = c.messages.create(model="c", max_tokens=100, messages=USER, extra_headers=headers)
        return message.content[0].text  # type: ignore[union-attr]

    assert text(**{"x-llmsim-seed": "5"}) == text(**{"x-llmsim-seed": "5"}) != text(**{"x-llmsim-seed": "6"})
    assert text(**{"x-llmsim-profile": "fixed"}) == "The answer is 42. END of the story."


def test_stream_events_arrive_at_the_planned_pace(sim_server_factory: Callable[..., SimServer]) -> None:
    slow = {**FAST, "latency": {**FAST["latency"], "ttftMs": {"type": "constant", "value": 100},
                                "itlMs": {"type": "constant", "value": 20}}}  # fmt: skip
    c = client(sim_server_factory(slow))
    for _warm_up in (True, False):  # the SDK's first stream pays its one-off set-up cost
        start = time.monotonic()
        with c.messages.stream(model="c", max_tokens=100, messages=USER) as stream:
            arrivals = [time.monotonic() - start for _ in stream.text_stream]
    # planned: first token at 100 ms, then 11 gaps of 20 ms; never early, late only by noise
    assert arrivals[0] >= 0.1 and 0.32 <= arrivals[-1] <= 0.6 and arrivals[-1] - arrivals[0] >= 0.15


async def test_async_client_streams(sim_server: SimServer) -> None:
    c = anthropic.AsyncAnthropic(base_url=sim_server.url, api_key="k", max_retries=0)
    async with c.messages.stream(model="c", max_tokens=100, messages=USER) as stream:
        final = await stream.get_final_message()
    assert final.usage.output_tokens == 12 and final.stop_reason == "end_turn"
    await c.close()


def test_unknown_model_of_a_strict_profile_is_not_found_error(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory({**FAST, "models": {"allow": ["claude-*"], "strict": True}})
    with pytest.raises(anthropic.NotFoundError) as caught:
        client(server).messages.create(model="gpt-4o", max_tokens=5, messages=USER)
    body = caught.value.body
    assert isinstance(body, dict) and body["error"] == {"type": "not_found_error", "message": "model: gpt-4o"}


def test_wrong_method_on_messages_is_an_anthropic_error(sim_server: SimServer) -> None:
    r = httpx.get(sim_server.url + "/v1/messages", headers={"x-api-key": "k"})
    body = r.json()
    assert (
        r.status_code == 405 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    )
