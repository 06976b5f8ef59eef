"""Sizes the real providers cap get the provider's own 400 at once, before any work (issue 18,
item 1); the caps and their sources are in `llmsim/providers/limits.py`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hostile.harness import Served, bounded
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
