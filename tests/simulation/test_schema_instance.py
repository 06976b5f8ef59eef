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


COMBINED: list[dict[str, Any]] = [
    {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
    {"type": "string", "pattern": r"^\d{5}(-\d{4})?$", "minLength": 10},
    {"type": "string", "format": "email", "pattern": r"@example\.org$"},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "uuid", "maxLength": 36},
    {"type": "string", "format": "ipv6"},
    {"type": "string", "format": "duration"},
    {"type": "string", "enum": ["red", "green", "blue"], "pattern": "^g"},
    {"type": "integer", "enum": [1, 5, 50], "maximum": 10, "minimum": 2},
    {
        "type": "array",
        "items": {"type": "string", "pattern": r"^sku-[a-f0-9]{6}$"},
        "minItems": 2,
        "maxItems": 4,
    },
    {
        "type": "array",
        "items": {"enum": ["a", "b", "c", "d"]},
        "minItems": 3,
        "maxItems": 3,
        "uniqueItems": True,
    },
    {"type": "array", "items": {"type": "integer"}, "maxItems": 0},
    {"type": "array", "items": {"type": "integer"}, "minItems": 0, "maxItems": 1},
    {"type": "integer", "minimum": 7, "maximum": 70, "multipleOf": 7},
    {"type": "number", "minimum": 0.5, "maximum": 2.5, "multipleOf": 0.25},
    {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": r"^[A-Z]{2}\d{2}$"},
            "contact": {"type": "string", "format": "email"},
            "tags": {
                "type": "array",
                "items": {"type": "string", "enum": ["x", "y"]},
                "minItems": 1,
                "maxItems": 2,
            },
            "when": {"type": "string", "format": "date"},
        },
        "required": ["code", "contact", "tags", "when"],
        "additionalProperties": False,
    },
]


@pytest.mark.parametrize("schema", COMBINED, ids=lambda s: str(s)[:60])
def test_pattern_format_items_and_enum_hold_together(schema: dict[str, Any]) -> None:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    validator = jsonschema.Draft202012Validator(schema, format_checker=checker)
    values = [schema_instance.instance(schema, np.random.default_rng(seed)) for seed in range(60)]
    for value in values:
        errors = [e.message for e in validator.iter_errors(value)]
        assert not errors, (value, errors)
    if schema.get("type") == "integer" and "multipleOf" in schema:
        assert len(set(values)) > 3, "multiples are drawn across the range, not always the minimum"


def test_array_sizes_stay_bounded_whatever_maxitems_says() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 100_000}
    sizes = {len(schema_instance.instance(schema, np.random.default_rng(s))) for s in range(200)}
    assert sizes == set(range(2, 2 + schema_instance.EXTRA_ITEMS + 1))


def test_pattern_strings_are_bounded_and_hostile_patterns_fall_back() -> None:
    from llmsim.simulation import regex_instance

    text = schema_instance.instance({"type": "string", "pattern": "(a|b)*c+" * 40}, np.random.default_rng(1))
    assert len(text) <= regex_instance.MAX_LENGTH
    assert isinstance(
        schema_instance.instance({"type": "string", "pattern": "(("}, np.random.default_rng(1)), str
    )
