"""Generated JSON values validate against the schemas they were generated from."""

from __future__ import annotations

from typing import Any

import jsonschema
import numpy as np
import pytest

from llmsim.simulation import schema_instance

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {"a": {"type": "string", "minLength": 3, "maxLength": 5}},
        "required": ["a"],
    },
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 10, "maximum": 12},
            "x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        },
    },
    {
        "type": "array",
        "items": {"type": "string", "enum": ["x", "y", "z"]},
        "minItems": 2,
        "maxItems": 3,
        "uniqueItems": True,
    },
    {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
        },
    },
    {
        "$defs": {"P": {"type": "object", "properties": {"v": {"type": "boolean"}}, "required": ["v"]}},
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/P"}},
        "required": ["p"],
    },
    {"anyOf": [{"type": "null"}, {"type": "integer", "multipleOf": 5, "minimum": 1, "maximum": 100}]},
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"const": 3}}, "required": ["b"]},
        ]
    },
    {"type": ["string", "null"]},
    {
        "type": "object",
        "properties": {
            "nested": {
                "type": "array",
                "items": {"type": "object", "properties": {"k": {"type": "number"}}, "required": ["k"]},
            }
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instances_validate(schema: dict[str, Any]) -> None:
    for seed in range(25):
        jsonschema.validate(schema_instance.instance(schema, np.random.default_rng(seed)), schema)


def test_gemini_upper_case_types_are_understood() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "n": {"type": "INTEGER"}},
        "required": ["city"],
    }
    value = schema_instance.instance(schema, np.random.default_rng(0))
    assert isinstance(value["city"], str) and isinstance(value["n"], int)
