"""values.yaml is documented field by field, and values.schema.json is strict and covers it exactly."""

from __future__ import annotations

import json
import re
from typing import Any

import helmrender
import jsonschema
import yaml

VALUES_TEXT = (helmrender.CHART / "values.yaml").read_text(encoding="utf-8")
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((helmrender.CHART / "values.schema.json").read_text(encoding="utf-8"))
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9_]*):")


def schema_node(path: tuple[str, ...]) -> dict[str, Any] | None:
    """The schema of a values path; None below a free-form object (no declared properties)."""
    node: dict[str, Any] = SCHEMA
    for key in path:
        if "properties" not in node:
            return None
        node = node["properties"][key]
    return node


def declared(parent: tuple[str, ...]) -> bool:
    """Whether the keys under `parent` are the chart's own (the schema declares them)."""
    node = schema_node(parent)
    return node is not None and "properties" in node


def documented_keys() -> list[tuple[tuple[str, ...], bool]]:
    """(path, has a comment right above it) for every key line of values.yaml."""
    out: list[tuple[tuple[str, ...], bool]] = []
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in VALUES_TEXT.splitlines():
        match = KEY_LINE.match(line)
        if match:
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            out.append((tuple(k for _, k in stack), previous.strip().startswith("#")))
        if line.strip():
            previous = line
    return out


def test_every_chart_value_has_a_comment_above_it() -> None:
    undocumented = [
        ".".join(path)
        for path, commented in documented_keys()
        if not commented and declared(path[:-1])  # children of free-form objects are Kubernetes fields
    ]
    assert undocumented == []


def test_the_default_values_satisfy_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for key, child in schema.get("properties", {}).items():
        nodes += walk(child, f"{path}.{key}" if path else key)
    return nodes


def test_the_schema_rejects_unknown_keys_at_every_declared_level() -> None:
    loose = [
        path or "<root>"
        for path, node in walk(SCHEMA)
        if "properties" in node and node.get("additionalProperties") is not False
    ]
    assert loose == []


def test_the_schema_describes_every_value_and_nothing_else() -> None:
    def leaves(values: Any, schema: dict[str, Any], path: str = "") -> set[str]:
        if not isinstance(values, dict) or "properties" not in schema:
            return {path}
        out: set[str] = set()
        for key in values.keys() | schema["properties"].keys():
            assert key in values, f"{path}.{key}: in the schema but has no default in values.yaml"
            assert key in schema["properties"], f"{path}.{key}: in values.yaml but not in the schema"
            out |= leaves(values[key], schema["properties"][key], f"{path}.{key}" if path else key)
        return out

    assert len(leaves(VALUES, SCHEMA)) > 50


def test_every_schema_property_says_what_it_is() -> None:
    missing = [
        path
        for path, node in walk(SCHEMA)
        if path and "properties" not in node and not node.get("description")
    ]
    assert missing == []


def test_every_ci_values_file_is_valid_and_says_what_it_tests() -> None:
    files = sorted((helmrender.CHART / "ci").glob("*.yaml"))
    assert len(files) >= 6
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# "), f"{path.name}: start with a comment saying what the scenario is"
        jsonschema.Draft7Validator(SCHEMA).validate(_merge(VALUES, yaml.safe_load(text)))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out
