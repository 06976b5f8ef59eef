"""OpenAI `POST /v1/chat/completions` and its Azure twin, streaming and not."""

from __future__ import annotations

from json.encoder import encode_basestring as _json_string  # the C string escaper json.dumps uses
from typing import Any

from llmsim.providers import fields, limits, openai_common, sse
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
)
from llmsim.simulation.plan import Choice, ResponsePlan, ToolCall
from llmsim.simulation.request import GenerationRequest

FINGERPRINT = "fp_llmsim"


class ChatCompletions(openai_common.OpenAIEndpoint):
    """The Chat Completions endpoint (OpenAI and Azure OpenAI)."""

    operation = "chat"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        doc, model = self.body_and_model(facts)
        messages = openai_common.chat_messages(doc)
        max_tokens = fields.integer(doc, "max_completion_tokens", minimum=1)
        if max_tokens is None:
            max_tokens = fields.integer(doc, "max_tokens", minimum=1)
        tools, choice = openai_common.chat_tools(doc)
        schema, json_mode = openai_common.response_format(doc)
        stream = fields.boolean(doc, "stream")
        options = fields.obj(doc, "stream_options") or {}
        if options and not stream:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        fields.string(doc, "user")
        fields.number(doc, "temperature")
        fields.number(doc, "top_p")
        return GenerationRequest(
            provider=self.provider,
            operation="chat",
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            stop=fields.string_list(doc, "stop", max_items=4),
            stream=stream,
            n=fields.integer(doc, "n", minimum=1, maximum=limits.OPENAI_MAX_N) or 1,
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=fields.boolean(doc, "parallel_tool_calls", default=True),
            json_schema=schema,
            json_mode=json_mode,
            seed=fields.integer(doc, "seed"),
            include_usage=fields.boolean(options, "include_usage", prefix="stream_options."),
            logprobs=openai_common.requested_logprobs(doc),
        )

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        azure = self.azure
        headers = self.headers(plan)
        if request.stream:
            return StreamAnswer(
                200, {**sse.STREAM_HEADERS, **headers}, tuple(stream_frames(plan, request, azure=azure))
            )
        body = completion_body(plan, request, azure=azure)
        return BodyAnswer(
            200, {"Content-Type": "application/json", **headers}, json_body(body), at_s=plan.timing.e2e_s
        )


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": "call_" + call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def completion_body(plan: ResponsePlan, request: GenerationRequest, *, azure: bool = False) -> dict[str, Any]:
    choices = []
    for choice in plan.choices:
        refused = choice.finish_reason == "refusal"
        message: dict[str, Any] = {
            "role": "assistant",
            "content": choice.text if (choice.pieces or not choice.tool_calls) and not refused else None,
            "refusal": choice.text if refused else None,
        }
        if choice.tool_calls:
            message["tool_calls"] = [_tool_call_json(c) for c in choice.tool_calls]
        entry: dict[str, Any] = {
            "index": choice.index,
            "message": message,
            "logprobs": openai_common.chat_logprobs(choice),
            "finish_reason": openai_common.finish_reason(choice, request),
        }
        if azure:
            entry["content_filter_results"] = _azure_filter(choice)
        choices.append(entry)
    body: dict[str, Any] = {
        "id": "chatcmpl-" + plan.response_id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": openai_common.usage(plan),
    }
    if azure:
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _azure_filter()}]
    return body


def _azure_filter(choice: Choice | None = None) -> dict[str, Any]:
    """Azure's per-category verdicts: all `safe`, or (a `content_filter` finish) `violence` filtered."""
    tripped = "violence" if choice is not None and choice.finish_reason == "content_filter" else None
    return openai_common.content_filter_results(tripped)


def stream_frames(plan: ResponsePlan, request: GenerationRequest, *, azure: bool = False) -> list[Frame]:
    """The SSE frames of a streamed chat completion, each due at its token's deadline."""
    offsets = plan.timing.token_offsets_s
    first = offsets[0] if offsets else plan.timing.ttft_s
    usage_null = ',"usage":null' if request.include_usage else ""
    head = (
        f'{{"id":"chatcmpl-{plan.response_id}","object":"chat.completion.chunk","created":{plan.created},'
        f'"model":{json_body(plan.model).decode()},"system_fingerprint":"{FINGERPRINT}","choices":['
    )
    tail = "]" + usage_null + "}"

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return b"data: " + (head + json_body(choice).decode() + tail).encode() + b"\n\n"

    # The hot path (one text token): only the piece needs JSON escaping.
    text_open = ["data: " + head + f'{{"index":{c.index},"delta":{{"content":' for c in plan.choices]
    text_close = '},"logprobs":null,"finish_reason":null}' + tail + "\n\n"

    def text_chunk(index: int, piece: str) -> bytes:
        return (text_open[index] + _json_string(piece) + text_close).encode()

    frames: list[Frame] = []
    if azure:
        frames.append(
            Frame(
                first,
                sse.data(
                    {
                        "id": "",
                        "object": "",
                        "created": 0,
                        "model": "",
                        "choices": [],
                        "prompt_filter_results": [
                            {"prompt_index": 0, "content_filter_results": _azure_filter()}
                        ],
                    }
                ),
            )
        )
    for choice in plan.choices:
        # As api.openai.com opens them: a tool-calling reply with `content: null` (and no refusal).
        role: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        if choice.tool_calls and not choice.pieces:
            role = {"role": "assistant", "content": None}
        elif choice.finish_reason == "refusal":
            role = {"role": "assistant", "content": None, "refusal": ""}
        frames.append(Frame(first, chunk(choice.index, role)))
    only = plan.choices[0] if len(plan.choices) == 1 else None
    fast = (
        only is not None and only.logprobs is None and not only.tool_calls and only.finish_reason != "refusal"
    )
    fast = fast and only is not None and plan.stream_length == len(only.pieces)
    if only is not None and fast:
        # The common case (one choice of plain text): one comprehension, no per-token branching.
        opening, new = text_open[only.index], tuple.__new__
        frames.extend(new(Frame, (at, (opening + _json_string(piece) + text_close).encode(), k))
                      for k, (at, piece) in enumerate(zip(offsets, only.pieces, strict=False)))  # fmt: skip
    for k in range(plan.stream_length if fast else 0, plan.stream_length):
        at = offsets[k]
        for choice in plan.choices:
            if k < len(choice.pieces):
                if choice.finish_reason == "refusal":
                    data = chunk(choice.index, {"refusal": choice.pieces[k]})
                elif choice.logprobs is None:
                    data = text_chunk(choice.index, choice.pieces[k])
                else:
                    lp = openai_common.chat_logprobs(choice, k, k + 1)
                    data = chunk(choice.index, {"content": choice.pieces[k]}, logprobs=lp)
                frames.append(Frame(at, data, token=k))
                continue
            for delta in _tool_deltas(choice, k):
                frames.append(Frame(at, chunk(choice.index, delta), token=k))
    end = plan.timing.e2e_s
    for choice in plan.choices:
        finish = chunk(choice.index, {}, openai_common.finish_reason(choice, request))
        if azure and choice.finish_reason == "content_filter":
            finish = sse.data({"id": "chatcmpl-" + plan.response_id, "object": "chat.completion.chunk",
                               "created": plan.created, "model": plan.model, "system_fingerprint": FINGERPRINT,
                               "choices": [{"index": choice.index, "delta": {}, "logprobs": None,
                                            "finish_reason": "content_filter",
                                            "content_filter_results": _azure_filter(choice)}]})  # fmt: skip
        frames.append(Frame(end, finish, token=TRAILER))
    if request.include_usage:
        usage_chunk = {
            "id": "chatcmpl-" + plan.response_id, "object": "chat.completion.chunk", "created": plan.created,
            "model": plan.model, "system_fingerprint": FINGERPRINT, "choices": [], "usage": openai_common.usage(plan),
        }  # fmt: skip
        frames.append(Frame(end, sse.data(usage_chunk), token=TRAILER))
    frames.append(Frame(end, sse.DONE, token=TRAILER))
    return frames


def _tool_deltas(choice: Choice, k: int) -> list[dict[str, Any]]:
    """The deltas carrying token slot k of a choice past its text. Calls stream one after the other,
    as the real API sends parallel calls: a call's first delta carries its index, id, type and name
    with empty arguments, the next ones its argument fragments."""
    k -= len(choice.pieces)
    for i, call in enumerate(choice.tool_calls):
        n = len(call.argument_pieces)
        if k < n:
            fragment = {"tool_calls": [{"index": i, "function": {"arguments": call.argument_pieces[k]}}]}
            if k:
                return [fragment]
            opening = {"index": i, "id": "call_" + call.id, "type": "function",
                       "function": {"name": call.name, "arguments": ""}}  # fmt: skip
            return [{"tool_calls": [opening]}, fragment]
        k -= n
    return []
