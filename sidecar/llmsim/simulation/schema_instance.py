"""Generate a JSON value that validates against a (practical subset of) JSON Schema.

Used for tool-call arguments and `response_format: json_schema` replies. Supports `type`
(also Gemini's upper-case names and type lists), `properties`/`required`, `items`,
`enum`/`const`, `anyOf`/`oneOf`/`allOf`, local `$ref` to `$defs`/`definitions`, strings with
`pattern` (a string the regex matches, see `regex_instance`), `format` and length bounds,
numeric bounds and `multipleOf`, array bounds (`minItems`/`maxItems`) and `uniqueItems`. The
keywords hold together: an `enum` value is picked among those the other keywords accept, a
`format` value is used only when it matches the `pattern` and fits the length bounds.

Generation stays bounded: arrays get at most `EXTRA_ITEMS` items beyond `minItems`, strings
from patterns at most `regex_instance.MAX_LENGTH` characters, nesting at most 8 levels.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from llmsim.simulation import regex_instance

_WORDS = (
    "alpha",
    "bravo",
    "delta",
    "echo",
    "golf",
    "hotel",
    "india",
    "kilo",
    "lima",
    "oscar",
    "tango",
    "zulu",
)
_CITIES = ("Paris", "Berlin", "Tokyo", "Lagos", "Lima", "Oslo", "Austin", "Madrid")
_FORMATS = {
    "date-time": "2026-01-15T09:30:00Z",
    "date": "2026-01-15",
    "time": "09:30:00",
    "email": "user@example.com",
    "uri": "https://example.com/resource",
    "url": "https://example.com/resource",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "idn-email": "user@example.com",
    "uri-reference": "/resource/1",
    "iri": "https://example.com/resource",
    "iri-reference": "/resource/1",
    "uri-template": "https://example.com/{id}",
    "duration": "P3DT4H",
    "json-pointer": "/items/0",
    "relative-json-pointer": "0/name",
    "regex": "^[a-z]+$",
    "byte": "aGVsbG8=",
    "password": "s3cr3t-passw0rd",
}
_MAX_DEPTH = 8
EXTRA_ITEMS = 3
"""Arrays get between minItems and min(maxItems, minItems + this) items."""


def instance(schema: Any, rng: np.random.Generator, root: Any = None, depth: int = 0) -> Any:
    """A value valid against `schema` (best effort for exotic keywords)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None if depth > _MAX_DEPTH else "value"
    if "$ref" in schema:
        return instance(_deref(schema["$ref"], root), rng, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum") and isinstance(schema["enum"], list):
        options = [v for v in schema["enum"] if _accepts(schema, v)] or schema["enum"]
        return options[int(rng.integers(len(options)))]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [o for o in schema[key] if not (isinstance(o, dict) and _type_of(o) == "null")]
            return instance((options or schema[key])[0], rng, root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = _deref(part["$ref"], root) if isinstance(part, dict) and "$ref" in part else part
            if isinstance(part, dict):
                merged = _merge(merged, part)
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return instance(_merge(merged, rest), rng, root, depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, rng, root, depth)
    if kind == "array":
        return _array(schema, rng, root, depth)
    if kind == "string":
        return _string(schema, rng)
    if kind == "integer":
        return int(_number(schema, rng, integer=True))
    if kind == "number":
        return _number(schema, rng, integer=False)
    if kind == "boolean":
        return bool(rng.integers(2))
    if kind == "null":
        return None
    return _string({}, rng)


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if str(k).lower() != "null"]
        kind = non_null[0] if non_null else "null"
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return None
    return str(kind).lower()


def _deref(ref: str, root: Any) -> Any:
    if not ref.startswith("#/"):
        return {}
    node = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        else:
            out[key] = value
    return out


def _object(schema: dict[str, Any], rng: np.random.Generator, root: Any, depth: int) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for name, sub in props.items():
        if (
            name in ("city", "location")
            and isinstance(sub, dict)
            and _type_of(sub) == "string"
            and not sub.get("enum")
        ):
            out[name] = _CITIES[int(rng.integers(len(_CITIES)))]
        else:
            out[name] = instance(sub, rng, root, depth + 1)
    for name in schema.get("required") or []:
        if name not in out:
            out[name] = "value"
    min_props = int(schema.get("minProperties") or 0)
    extra = schema.get("additionalProperties")
    i = 0
    while len(out) < min_props and extra is not False:
        out[f"key{i}"] = instance(extra, rng, root, depth + 1) if isinstance(extra, dict) else "value"
        i += 1
    return out


def _accepts(schema: dict[str, Any], value: Any) -> bool:
    """Whether an enum value also meets the schema's string and number keywords."""
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if re.search(pattern, value) is None:
                    return False
            except re.error:
                pass
        if len(value) < int(schema.get("minLength") or 0):
            return False
        return schema.get("maxLength") is None or len(value) <= int(schema["maxLength"])
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return (lo is None or value >= lo) and (hi is None or value <= hi)
    return True


def _array(schema: dict[str, Any], rng: np.random.Generator, root: Any, depth: int) -> list[Any]:
    raw_hi = schema.get("maxItems")
    hi = int(raw_hi) if raw_hi is not None else None
    lo = (
        int(schema["minItems"]) if schema.get("minItems") is not None else min(1, hi if hi is not None else 1)
    )
    top = lo + EXTRA_ITEMS if hi is None else max(lo, min(hi, lo + EXTRA_ITEMS))
    size = int(rng.integers(lo, top + 1))
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    prefix = schema.get("prefixItems") or []
    out = [instance(p, rng, root, depth + 1) for p in prefix]
    seen: set[str] = set()
    attempts = 0
    while len(out) < size and attempts < size * 10:
        attempts += 1
        value = instance(items, rng, root, depth + 1)
        if schema.get("uniqueItems"):
            key = repr(value)
            if key in seen:
                continue
            seen.add(key)
        out.append(value)
    return out


def _string(schema: dict[str, Any], rng: np.random.Generator) -> str:
    lo = int(schema.get("minLength") or 0)
    hi = schema.get("maxLength")
    fmt = schema.get("format")
    text = _FORMATS.get(str(fmt), "") if fmt else ""
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        if text and not _accepts({"pattern": pattern}, text):
            text = ""
        if not text:
            for _ in range(8):  # a few tries for one that also fits the length bounds
                found = regex_instance.generate(pattern, rng)
                if found is None:
                    break
                text = found
                if lo <= len(found) and (hi is None or len(found) <= int(hi)):
                    return found
    if text and lo <= len(text) and (hi is None or len(text) <= int(hi)):
        return text
    if not text:
        words = [_WORDS[int(rng.integers(len(_WORDS)))] for _ in range(int(rng.integers(1, 4)))]
        text = " ".join(words)
    while len(text) < lo:
        text += " " + _WORDS[int(rng.integers(len(_WORDS)))]
    if hi is not None:
        text = text[: int(hi)]
    if len(text) < lo:
        text = text.ljust(lo, "x")
    return text


def _number(schema: dict[str, Any], rng: np.random.Generator, integer: bool) -> float:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    if schema.get("exclusiveMinimum") is not None and not isinstance(schema.get("exclusiveMinimum"), bool):
        lo = float(schema["exclusiveMinimum"]) + (1 if integer else 1e-6)
    if schema.get("exclusiveMaximum") is not None and not isinstance(schema.get("exclusiveMaximum"), bool):
        hi = float(schema["exclusiveMaximum"]) - (1 if integer else 1e-6)
    lo_f = float(lo) if lo is not None else (float(hi) - 100 if hi is not None else 0.0)
    hi_f = float(hi) if hi is not None else lo_f + 100
    if integer:
        lo_i, hi_i = math.ceil(lo_f), math.floor(hi_f)
        value: float = float(rng.integers(lo_i, hi_i + 1)) if hi_i >= lo_i else float(lo_i)
    else:
        value = round(float(rng.uniform(lo_f, hi_f)), 2)
        value = min(max(value, lo_f), hi_f)
    step = schema.get("multipleOf")
    if step and isinstance(step, int | float) and step > 0:
        first, last = math.ceil(lo_f / step - 1e-9), math.floor(hi_f / step + 1e-9)
        span = min(last - first, 1000)  # a thousand multiples to choose from at most
        k = first + int(rng.integers(0, span + 1)) if last >= first else first
        value = k * step
        value = float(round(value)) if integer else round(value, 10)
    return value
