"""OpenAI legacy `POST /v1/completions` (and Azure's deployment twin)."""

from __future__ import annotations

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
from llmsim.simulation.plan import Choice, ResponsePlan
from llmsim.simulation.request import GenerationRequest, Message

LEGACY_DEFAULT_MAX_TOKENS = 16
"""The legacy endpoint's documented default for `max_tokens`."""


class Completions(openai_common.OpenAIEndpoint):
    operation = "completion"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        doc, model = self.body_and_model(facts)
        prompt = fields.required(doc, "prompt")
        if isinstance(prompt, str):
            texts = [prompt]
        elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
            texts = list(prompt)
        elif isinstance(prompt, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            texts = [" tok" * len(prompt)]
        else:
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                "Invalid type for 'prompt': expected a string or an array of strings.",
                param="prompt",
            )
        stream = fields.boolean(doc, "stream")
        options = fields.obj(doc, "stream_options") or {}
        max_tokens = fields.integer(doc, "max_tokens", minimum=0)
        return GenerationRequest(
            provider=self.provider,
            operation="completion",
            model=model,
            messages=tuple(Message("user", t) for t in texts[:1]),
            max_tokens=LEGACY_DEFAULT_MAX_TOKENS if max_tokens is None else max(max_tokens, 1),
            stop=fields.string_list(doc, "stop", max_items=4),
            stream=stream,
            n=fields.integer(doc, "n", minimum=1, maximum=limits.OPENAI_MAX_N) or 1,
            seed=fields.integer(doc, "seed"),
            include_usage=fields.boolean(options, "include_usage", prefix="stream_options."),
            logprobs=fields.integer(doc, "logprobs", minimum=0, maximum=5),
        )

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        headers = self.headers(plan)
        if request.stream:
            return StreamAnswer(200, {**sse.STREAM_HEADERS, **headers}, tuple(_frames(plan, request)))
        body = {
            "id": "cmpl-" + plan.response_id,
            "object": "text_completion",
            "created": plan.created,
            "model": plan.model,
            "system_fingerprint": "fp_llmsim",
            "choices": [
                {
                    "text": c.text,
                    "index": c.index,
                    "logprobs": legacy_logprobs(c),
                    "finish_reason": openai_common.finish_reason(c, request),
                }
                for c in plan.choices
            ],
            "usage": {
                "prompt_tokens": plan.prompt_tokens,
                "completion_tokens": plan.completion_tokens,
                "total_tokens": plan.total_tokens,
            },
        }
        return BodyAnswer(
            200, {"Content-Type": "application/json", **headers}, json_body(body), at_s=plan.timing.e2e_s
        )


def legacy_logprobs(
    choice: Choice, start: int = 0, stop: int | None = None, offset: int = 0
) -> dict[str, Any] | None:
    """The legacy `logprobs` object for pieces [start, stop): parallel lists of tokens, their
    logprobs, `{token: logprob}` of the top alternatives (null when 0 were asked for) and each
    token's character offset in the text (from `offset`)."""
    if choice.logprobs is None:
        return None
    entries = choice.logprobs[start:stop]
    offsets, at = [], offset
    for entry in entries:
        offsets.append(at)
        at += len(entry.token)
    top = [dict(e.top) for e in entries] if any(e.top for e in entries) else None
    return {"tokens": [e.token for e in entries], "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": top, "text_offset": offsets}  # fmt: skip


def _frames(plan: ResponsePlan, request: GenerationRequest) -> list[Frame]:
    def chunk(index: int, text: str, finish: str | None, logprobs: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "cmpl-" + plan.response_id, "object": "text_completion", "created": plan.created, "model": plan.model,
            "system_fingerprint": "fp_llmsim",
            "choices": [{"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}],
        }  # fmt: skip
        if request.include_usage:
            out["usage"] = None
        return out

    frames: list[Frame] = []
    offsets = plan.timing.token_offsets_s
    chars = [0] * len(plan.choices)  # characters streamed so far per choice (logprobs' text_offset)
    for k in range(plan.stream_length):
        for choice in plan.choices:
            if k < len(choice.pieces):
                lp = legacy_logprobs(choice, k, k + 1, chars[choice.index])
                chars[choice.index] += len(choice.pieces[k])
                frames.append(
                    Frame(offsets[k], sse.data(chunk(choice.index, choice.pieces[k], None, lp)), token=k)
                )
    end = plan.timing.e2e_s
    for choice in plan.choices:
        frames.append(
            Frame(
                end,
                sse.data(chunk(choice.index, "", openai_common.finish_reason(choice, request))),
                token=TRAILER,
            )
        )
    if request.include_usage:
        last = chunk(0, "", None)
        last["choices"] = []
        last["usage"] = {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": plan.completion_tokens,
            "total_tokens": plan.total_tokens,
        }
        frames.append(Frame(end, sse.data(last), token=TRAILER))
    frames.append(Frame(end, sse.DONE, token=TRAILER))
    return frames
