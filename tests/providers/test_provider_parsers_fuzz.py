"""Property: the Anthropic, Gemini and Ollama parsers answer any body with a request or an ApiError.

Random JSON (and random bytes) must never escape as another exception (which the server would
turn into a 500), and every ApiError must render as a 4xx in the provider's own shape.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmsim.providers import anthropic, gemini, ollama
from llmsim.providers.base import ApiError, Endpoint, HttpRequestFacts

ENDPOINTS: list[tuple[str, Endpoint]] = [
    ("/v1/messages", anthropic.Messages()),
    ("/v1/messages/count_tokens", anthropic.CountTokens()),
    *((f"/v1beta/models/g:{method}", endpoint) for method, endpoint in gemini.ENDPOINTS.items()),
    ("/api/chat", ollama.Chat()),
    ("/api/generate", ollama.Generate()),
    ("/api/embed", ollama.Embed()),
]

KEYS = st.sampled_from(
    ["model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences", "stream", "content",
     "role", "type", "text", "name", "input_schema", "contents", "parts", "systemInstruction", "generationConfig",
     "maxOutputTokens", "stopSequences", "responseMimeType", "responseSchema", "toolConfig", "functionCallingConfig",
     "mode", "functionDeclarations", "requests", "outputDimensionality", "options", "num_predict", "stop", "format",
     "prompt", "input", "dimensions", "generateContentRequest", "candidateCount", "seed", "function", "parameters"]
)  # fmt: skip
SCALARS = (
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8)
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(KEYS | st.text(max_size=5), children, max_size=6)
    ),
    max_leaves=30,
)
BODIES = st.dictionaries(KEYS, JSON, max_size=8).map(lambda d: json.dumps(d).encode()) | st.binary(
    max_size=64
)


_TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
VALID: dict[str, Any] = {
    "/v1/messages": {"model": "c", "max_tokens": 5, "system": [{"type": "text", "text": "s"}], "stop_sequences": ["x"],
                     "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                     "tools": [{"name": "t", "input_schema": _TOOL_SCHEMA}], "tool_choice": {"type": "tool", "name": "t"}},
    "/v1/messages/count_tokens": {"model": "c", "messages": [{"role": "user", "content": "hi"}]},
    "/v1beta/models/g:generateContent": {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}], "systemInstruction": {"parts": [{"text": "s"}]},
        "generationConfig": {"maxOutputTokens": 5, "stopSequences": ["x"], "responseMimeType": "application/json",
                             "responseSchema": {"type": "OBJECT"}},
        "tools": [{"functionDeclarations": [{"name": "t", "parameters": _TOOL_SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["t"]}}},
    "/v1beta/models/g:embedContent": {"content": {"parts": [{"text": "hi"}]}, "outputDimensionality": 4},
    "/v1beta/models/g:batchEmbedContents": {"requests": [{"content": {"parts": [{"text": "hi"}]}}]},
    "/api/chat": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 3, "stop": ["x"]},
                  "tools": [{"type": "function", "function": {"name": "t", "parameters": _TOOL_SCHEMA}}], "format": "json"},
    "/api/generate": {"model": "m", "prompt": "hi", "system": "s", "options": {"seed": 1}},
    "/api/embed": {"model": "m", "input": ["a"], "dimensions": 3},
}  # fmt: skip
VALID["/v1beta/models/g:streamGenerateContent"] = VALID["/v1beta/models/g:countTokens"] = VALID[
    "/v1beta/models/g:generateContent"
]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


@st.composite
def mutated(draw: st.DrawFn, path: str) -> bytes:
    """A valid body with one node (possibly the whole body) replaced by random JSON."""
    base = VALID[path]
    where = draw(st.sampled_from(_paths(base)))
    return json.dumps(_replace(base, where, draw(JSON))).encode()


def facts(path: str, body: bytes) -> HttpRequestFacts:
    route = {"version": "v1beta", "model": "g"} if path.startswith("/v1beta/") else {}
    return HttpRequestFacts("POST", path, route, {"alt": "sse"}, {}, body, "fuzz")


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(ENDPOINTS) - 1), body=BODIES)
def test_any_body_gets_a_request_or_a_provider_shaped_4xx(index: int, body: bytes) -> None:
    path, endpoint = ENDPOINTS[index]
    f = facts(path, body)
    try:
        request = endpoint.parse(f)
    except ApiError as error:
        answer = endpoint.render_error(error, f)
        assert 400 <= answer.status < 500
        doc = json.loads(answer.body)
        assert "error" in doc
        if endpoint.provider == "ollama":
            assert isinstance(doc["error"], str)
        elif endpoint.provider == "anthropic":
            assert doc["type"] == "error" and isinstance(doc["error"]["message"], str)
        else:
            assert doc["error"]["code"] == answer.status and isinstance(doc["error"]["status"], str)
        return
    assert request.provider == endpoint.provider and request.operation == endpoint.operation
    assert isinstance(request.model, str) and request.model


@settings(max_examples=400, deadline=None)
@given(data=st.data(), index=st.integers(0, len(ENDPOINTS) - 1))
def test_valid_bodies_with_one_mutated_node_never_crash_the_parser(data: st.DataObject, index: int) -> None:
    path, endpoint = ENDPOINTS[index]
    body = data.draw(mutated(path))
    f = facts(path, body)
    try:
        endpoint.parse(f)
    except ApiError as error:
        assert 400 <= endpoint.render_error(error, f).status < 500


def test_the_valid_bodies_are_valid() -> None:
    for path, endpoint in ENDPOINTS:
        assert endpoint.parse(facts(path, json.dumps(VALID[path]).encode())).provider == endpoint.provider


def test_deeply_nested_bodies_are_a_4xx_not_a_crash() -> None:
    deep = b'{"model":"m","messages":' + b"[" * 5000 + b"]" * 5000 + b"}"
    for path, endpoint in ENDPOINTS:
        f = facts(path, deep)
        try:
            endpoint.parse(f)
        except ApiError as error:
            assert 400 <= endpoint.render_error(error, f).status < 500
        else:  # pragma: no cover - the body cannot be valid
            raise AssertionError(f"{path} accepted a 5000-deep body")
