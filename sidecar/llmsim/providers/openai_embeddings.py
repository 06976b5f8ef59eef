"""OpenAI `POST /v1/embeddings` (and Azure's twin): deterministic vectors, float or base64."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from llmsim.providers import fields, limits, openai_common
from llmsim.providers.base import (
    Answer,
    ApiError,
    BodyAnswer,
    ErrorKind,
    HttpRequestFacts,
    json_body_listing,
)
from llmsim.simulation.plan import ResponsePlan
from llmsim.simulation.request import GenerationRequest

MAX_INPUTS = limits.OPENAI_MAX_EMBEDDING_INPUTS


class Embeddings(openai_common.OpenAIEndpoint):
    operation = "embeddings"

    def parse(self, facts: HttpRequestFacts) -> GenerationRequest:
        doc, model = self.body_and_model(facts)
        raw = fields.required(doc, "input")
        inputs = _inputs(raw)
        fmt = fields.string(doc, "encoding_format", default="float")
        if fmt not in ("float", "base64"):
            raise ApiError(
                ErrorKind.INVALID_REQUEST,
                f"Invalid value: '{fmt}'. Supported values are: 'float' and 'base64'.",
                param="encoding_format",
            )
        return GenerationRequest(
            provider=self.provider,
            operation="embeddings",
            model=model,
            inputs=inputs,
            dimensions=fields.integer(
                doc, "dimensions", minimum=1, maximum=limits.OPENAI_MAX_EMBEDDING_DIMENSIONS
            ),
            extra={"encoding_format": fmt},
        )

    def render(self, plan: ResponsePlan, request: GenerationRequest, facts: HttpRequestFacts) -> Answer:
        b64 = request.extra.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for i, vec in enumerate(plan.embeddings):
            value: Any = (
                base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode() if b64 else list(vec)
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        body = {
            "object": "list",
            "data": [],
            "model": plan.model,
            "usage": {"prompt_tokens": plan.prompt_tokens, "total_tokens": plan.prompt_tokens},
        }
        headers = {"Content-Type": "application/json", **self.headers(plan)}
        return BodyAnswer(200, headers, json_body_listing(body, "data", data), at_s=plan.timing.ttft_s)


def _inputs(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        items: list[str] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        items = list(raw)
    elif isinstance(raw, list) and raw and all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        items = [" ".join(map(str, raw))]
    elif isinstance(raw, list) and raw and all(isinstance(x, list) for x in raw):
        items = [" ".join(map(str, x)) for x in raw]
    else:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            "Invalid 'input': expected a non-empty string or array of strings or token arrays.",
            param="input",
        )
    if len(items) > MAX_INPUTS:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"Invalid 'input': maximum {MAX_INPUTS} inputs per request, got {len(items)}.",
            param="input",
        )
    if any(x == "" for x in items):
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            param="input",
        )
    return tuple(items)
