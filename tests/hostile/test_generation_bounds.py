"""Schema-driven generation stays bounded whatever the schema asks for (issue 18, item 1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hostile.harness import Probe, Served, bounded


def _chat_with_schema(schema: dict[str, Any]) -> bytes:
    return json.dumps({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 64,
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}},
    }).encode()  # fmt: skip


def _chat_with_tool(parameters: dict[str, Any]) -> bytes:
    return json.dumps({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 64,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
        "tool_choice": "required",
    }).encode()  # fmt: skip


HUGE_SCHEMAS = {
    "minItems 2e6": {"type": "array", "items": {"type": "string"}, "minItems": 2_000_000},
    "minItems 1e8 nested": {
        "type": "array", "minItems": 100_000_000,
        "items": {"type": "array", "minItems": 100_000_000, "items": {"type": "integer"}},
    },
    "minLength 1e8": {"type": "string", "minLength": 100_000_000},
    "minProperties 1e8": {"type": "object", "minProperties": 100_000_000, "additionalProperties": {"type": "string"}},
    "pattern repeat 1e9": {"type": "string", "pattern": "^(?:a{0,65535}){65535}$"},
    "pattern nested empty repeats": {"type": "string", "pattern": "^((((((((){65535}){65535}){65535}){65535}){65535}){65535}){65535})$"},
    "pattern catastrophic": {"type": "string", "pattern": "^(a|a)*(a|a)*(a|a)*b$"},
    "enum checked against a catastrophic pattern": {
        "type": "string", "pattern": "^(a+)+$", "enum": ["a" * 40 + "!"],
    },
}  # fmt: skip


def _reply_size(answer: Probe) -> int:
    return len(answer.body)


@pytest.mark.parametrize("schema", list(HUGE_SCHEMAS.values()), ids=list(HUGE_SCHEMAS))
def test_a_response_format_schema_cannot_stall_the_server(served: Served, schema: dict[str, Any]) -> None:
    answer = bounded(served, "POST", "/v1/chat/completions", _chat_with_schema(schema))
    assert answer.status in (200, 400), answer.body[:500]
    assert _reply_size(answer) < 256 * 1024


@pytest.mark.parametrize("schema", list(HUGE_SCHEMAS.values()), ids=list(HUGE_SCHEMAS))
def test_tool_parameters_cannot_stall_the_server(served: Served, schema: dict[str, Any]) -> None:
    parameters = {"type": "object", "properties": {"x": schema}, "required": ["x"]}
    answer = bounded(served, "POST", "/v1/chat/completions", _chat_with_tool(parameters))
    assert answer.status in (200, 400), answer.body[:500]
    assert _reply_size(answer) < 256 * 1024
