"""Sizes the real providers cap get the provider's own 400 at once, before any work (issue 18,
item 1); the caps and their sources are in `llmsim/providers/limits.py`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hostile.harness import Served, bounded, probe
from llmsim.providers import limits


def _tool(i: int, *, strict: bool = False, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": f"f{i}", "parameters": parameters or {"type": "object", "properties": {}}}
    if strict:
        fn["strict"] = True
    return {"type": "function", "function": fn}


def _deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {
            "type": "object",
            "properties": {"x": schema},
            "required": ["x"],
            "additionalProperties": False,
        }
    return schema


def _wide_schema(properties: int) -> dict[str, Any]:
    return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(properties)}}


CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]
CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "openai n": (CHAT, {"model": "gpt-4o", "messages": MESSAGES, "n": 100_000}, "n"),
    "openai tools": (CHAT, {"model": "gpt-4o", "messages": MESSAGES, "tools": [_tool(i) for i in range(129)]}, "tools"),
    "openai strict schema depth": (CHAT, {"model": "gpt-4o", "messages": MESSAGES, "response_format": {
        "type": "json_schema", "json_schema": {"name": "o", "strict": True, "schema": _deep_schema(11)}}}, "response_format"),
    "openai strict schema properties": (CHAT, {"model": "gpt-4o", "messages": MESSAGES, "response_format": {
        "type": "json_schema", "json_schema": {"name": "o", "strict": True, "schema": _wide_schema(5001)}}}, "response_format"),
    "openai strict tool schema enum values": (CHAT, {"model": "gpt-4o", "messages": MESSAGES, "tools": [_tool(
        0, strict=True, parameters={"type": "object", "properties": {"e": {"type": "string", "enum": [str(i) for i in range(1001)]}}})]},
        "tools[0].function.parameters"),
    "openai responses tools": ("/v1/responses", {"model": "gpt-4o", "input": "hi", "tools": [
        {"type": "function", "name": f"f{i}", "parameters": {"type": "object"}} for i in range(129)]}, "tools"),
    "openai embeddings inputs": ("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["x"] * 10_000}, "input"),
    "openai embeddings dimensions": ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x", "dimensions": 10**8}, "dimensions"),
    "ollama embed inputs": ("/api/embed", {"model": "all-minilm", "input": ["x"] * 10_000}, "input"),
    "ollama embed dimensions": ("/api/embed", {"model": "all-minilm", "input": "x", "dimensions": 10**8}, "dimensions"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_a_request_over_a_provider_cap_gets_the_providers_400(served: Served, name: str) -> None:
    path, body, param = CASES[name]
    answer = bounded(served, "POST", path, json.dumps(body).encode())
    assert answer.status == 400, answer.body[:300]
    doc = json.loads(answer.body)
    if path.startswith("/api/"):
        assert "error" in doc and isinstance(doc["error"], str)
    else:
        assert doc["error"]["type"] == "invalid_request_error"
        assert doc["error"]["param"] == param


GEMINI = "/v1beta/models/gemini-2.0-flash"
GEMINI_CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "candidateCount": (":generateContent", {"contents": [{"parts": [{"text": "hi"}]}],
                                            "generationConfig": {"candidateCount": 100_000}}, "candidate_count"),
    "batch size": (":batchEmbedContents", {"requests": [
        {"model": "models/gemini-2.0-flash", "content": {"parts": [{"text": "x"}]}}] * 10_000}, "at most 100 requests"),
    "outputDimensionality": (":embedContent", {"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 10**8},
                             "output_dimensionality"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(GEMINI_CASES))
def test_a_gemini_request_over_a_cap_gets_geminis_400(served: Served, name: str) -> None:
    method, body, needle = GEMINI_CASES[name]
    answer = bounded(served, "POST", GEMINI + method, json.dumps(body).encode(), {"x-goog-api-key": "k"})
    assert answer.status == 400, answer.body[:300]
    error = json.loads(answer.body)["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert needle in error["message"]


def test_the_caps_themselves_are_accepted(served: Served) -> None:
    """At the cap the request is served (so the cap is the provider's, not lower)."""
    body = {"contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"candidateCount": limits.GEMINI_MAX_CANDIDATES, "maxOutputTokens": 8}}  # fmt: skip
    answer = bounded(
        served, "POST", GEMINI + ":generateContent", json.dumps(body).encode(), {"x-goog-api-key": "k"}
    )
    assert answer.status == 200, answer.body[:300]
    assert len(json.loads(answer.body)["candidates"]) == limits.GEMINI_MAX_CANDIDATES
    strict = {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": 16, "response_format": {
        "type": "json_schema", "json_schema": {"name": "o", "strict": True, "schema": _deep_schema(10)}}}  # fmt: skip
    answer = bounded(served, "POST", CHAT, json.dumps(strict).encode())
    assert answer.status == 200, answer.body[:300]


BIG_ANSWER_HEALTH_S = 0.25
"""Health bound while a 60 MB answer is sent (the copy of its body on the loop; 3.6 s before)."""


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [f"text {i}" for i in range(2048)]}),
        ("/api/embed", {"model": "all-minilm", "input": [f"text {i}" for i in range(2048)]}),
    ],
    ids=["openai", "ollama"],
)
def test_the_largest_embeddings_request_is_rendered_off_the_event_loop(
    served: Served, path: str, body: dict[str, Any]
) -> None:
    """2048 embeddings of 1536 dimensions are 60 MB of JSON and seconds of CPU: legitimate work at
    the provider's cap, so the answer may take longer than a hostile request's 1 s. It is planned
    and rendered in a worker thread (the event loop was blocked 3.6 s); what stays on the loop is
    handing 60 MB to the socket, one copy of the body, so the bound here is `BIG_ANSWER_HEALTH_S`."""
    for _ in range(3):
        answer = probe(served, "POST", path, json.dumps(body).encode(), timeout_s=60)
        assert answer.status == 200, answer.body[:300]
        if answer.worst_health_s < BIG_ANSWER_HEALTH_S:
            break
    assert answer.worst_health_s < BIG_ANSWER_HEALTH_S, f"/healthz took {answer.worst_health_s * 1000:.1f} ms"
    doc = json.loads(answer.body)
    vectors = doc["data"] if path.startswith("/v1") else doc["embeddings"]
    assert len(vectors) == 2048
