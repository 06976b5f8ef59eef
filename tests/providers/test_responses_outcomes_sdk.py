"""The Responses API's own outcomes through the openai SDK: a cut answer ends `incomplete`
(also in a stream, with `response.incomplete`), and a context overflow speaks of `input`."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from simserver import FAST, SimServer

LONG = {**FAST, "latency": {**FAST["latency"], "outputTokens": {"type": "constant", "value": 40}}}


def client(server: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)


def test_a_cut_answer_is_incomplete_plain_and_streamed(sim_server_factory: Callable[..., SimServer]) -> None:
    c = client(sim_server_factory(LONG))
    r = c.responses.create(model="gpt-4o", input="Tell me a story", max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].status == "incomplete" and r.usage is not None and r.usage.output_tokens == 16  # type: ignore[union-attr]
    with c.responses.stream(model="gpt-4o", input="Tell me a story", max_output_tokens=16) as stream:
        events = list(stream)
        # the SDK's helper only accepts response.completed as the end, as against the real API
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    last = events[-1]
    assert last.type == "response.incomplete" and "response.completed" not in [e.type for e in events]
    assert last.response.status == "incomplete" and last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.usage is not None and last.response.usage.output_tokens == 16
    whole = c.responses.create(model="gpt-4o", input="Tell me a story")
    assert whole.status == "completed" and whole.incomplete_details is None


def test_context_overflow_speaks_of_input_on_responses_and_of_messages_on_chat(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    c = client(sim_server_factory({**FAST, "models": {"contextWindow": 20}}))
    long_input = "word " * 100
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            c.responses.create(model="gpt-4o", input=long_input, stream=stream)
        error = caught.value
        assert error.code == "context_length_exceeded" and error.param == "input"
        assert error.body["message"].startswith("Your input exceeds the context window of this model.")  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as forced:
        c.responses.create(model="gpt-4o", input="hi", extra_headers={"x-llmsim-fault": "context_length"})
    assert forced.value.param == "input" and forced.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as chat:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": long_input}])
    assert chat.value.param == "messages" and "maximum context length" in chat.value.message
