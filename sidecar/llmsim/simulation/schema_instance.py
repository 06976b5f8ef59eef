"""Generate a JSON value that validates against a (practical subset of) JSON Schema.

Used for tool-call arguments and `response_format: json_schema` replies. Supports `type`
(also Gemini's upper-case names and type lists), `properties`/`required`, `items`,
`enum`/`const`, `anyOf`/`oneOf`/`allOf`, local `$ref` to `$defs`/`definitions`, strings with
`pattern` (a string the regex matches, see `regex_instance`), `format` and length bounds,
numeric bounds and `multipleOf`, array bounds (`minItems`/`maxItems`) and `uniqueItems`. The
keywords hold together: an `enum` value is picked among those the other keywords accept, a
`format` value is used only when it matches the `pattern` and fits the length bounds.

Generation stays bounded whatever the schema says: arrays get at most `EXTRA_ITEMS` items beyond
`minItems`, strings from patterns at most `regex_instance.MAX_LENGTH` characters, nesting at most 8
levels, and the whole value at most `MAX_VALUES` values and `MAX_CHARS` characters (fewer when the
caller's `max_chars`, derived from the request's max tokens, is smaller). A schema that asks for
more (`minItems: 100000000`, `minLength`, `minProperties`, a `$ref` fan-out) gets a value cut at
the budget: the reply is then cut at max tokens anyway, as a real model's is. Keywords of the wrong
type (`minItems: "x"`, bounds past 64-bit integers) are ignored, never an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from llmsim import linear_regex
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
MAX_VALUES = 2000
"""Hard budget: values (scalars, arrays, objects) in one generated instance."""
MAX_CHARS = 32 * 1024
"""Hard budget: characters of strings and property names in one generated instance."""
_INT64 = (1 << 63) - 1


class _Budget:
    """What generation may still spend; once spent, arrays and objects stop growing and strings
    stop lengthening (the value may then miss `minItems` and the like: it is cut, not endless)."""

    def __init__(self, max_chars: int) -> None:
        self.values = MAX_VALUES
        self.chars = max(0, min(MAX_CHARS, max_chars))

    def spent(self) -> bool:
        return self.values <= 0 or self.chars <= 0

    def take(self, chars: int = 0) -> None:
        """Spend one value of `chars` characters (plus 2 for its quotes or separator)."""
        self.values -= 1
        self.chars -= chars + 2


def _int(schema: dict[str, Any], key: str, default: int | None) -> int | None:
    """An integer keyword, clamped to 64 bits; `default` when absent or not a number."""
    raw = schema.get(key)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return default
    return max(-_INT64, min(_INT64, int(raw)))


def instance(schema: Any, rng: np.random.Generator, *, max_chars: int = MAX_CHARS) -> Any:
    """A value valid against `schema` (best effort for exotic keywords), within the budget:
    at most `MAX_VALUES` values and min(`MAX_CHARS`, `max_chars`) characters."""
    try:
        return _instance(schema, rng, schema, 0, _Budget(max_chars))
    except (ValueError, TypeError, OverflowError, RecursionError):  # a nonsensical schema
        return None


def _instance(schema: Any, rng: np.random.Generator, root: Any, depth: int, budget: _Budget) -> Any:
    budget.take()
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None if depth > _MAX_DEPTH else "value"
    if "$ref" in schema:
        return _instance(_deref(schema["$ref"], root), rng, root, depth + 1, budget)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum") and isinstance(schema["enum"], list):
        options = [v for v in schema["enum"] if _accepts(schema, v)] or schema["enum"]
        return options[int(rng.integers(len(options)))]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [o for o in schema[key] if not (isinstance(o, dict) and _type_of(o) == "null")]
            return _instance((options or schema[key])[0], rng, root, depth + 1, budget)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = _deref(part["$ref"], root) if isinstance(part, dict) and "$ref" in part else part
            if isinstance(part, dict):
                merged = _merge(merged, part)
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return _instance(_merge(merged, rest), rng, root, depth + 1, budget)
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, rng, root, depth, budget)
    if kind == "array":
        return _array(schema, rng, root, depth, budget)
    if kind == "string":
        text = _string(schema, rng, budget.chars)
        budget.take(len(text))
        return text
    if kind == "integer":
        whole = int(_number(schema, rng, integer=True))
        budget.take(len(str(whole)))
        return whole
    if kind == "number":
        number = _number(schema, rng, integer=False)
        budget.take(len(repr(number)))
        return number
    if kind == "boolean":
        return bool(rng.integers(2))
    if kind == "null":
        return None
    return _string({}, rng, budget.chars)


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


def _deref(ref: Any, root: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/"):
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
        if key == "properties" and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        else:
            out[key] = value
    return out


def _object(
    schema: dict[str, Any], rng: np.random.Generator, root: Any, depth: int, budget: _Budget
) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    out: dict[str, Any] = {}
    for name, sub in props.items():
        if budget.spent():
            return out
        budget.take(len(name))
        if (
            name in ("city", "location")
            and isinstance(sub, dict)
            and _type_of(sub) == "string"
            and not sub.get("enum")
        ):
            out[name] = _CITIES[int(rng.integers(len(_CITIES)))]
        else:
            out[name] = _instance(sub, rng, root, depth + 1, budget)
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in out and not budget.spent():
            budget.take(len(name) + 5)
            out[name] = "value"
    min_props = _int(schema, "minProperties", 0) or 0
    extra = schema.get("additionalProperties")
    i = 0
    while len(out) < min_props and extra is not False and not budget.spent():
        key = f"key{i}"
        budget.take(len(key))
        out[key] = _instance(extra, rng, root, depth + 1, budget) if isinstance(extra, dict) else "value"
        i += 1
    return out


def _accepts(schema: dict[str, Any], value: Any) -> bool:
    """Whether an enum value also meets the schema's string and number keywords."""
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if linear_regex.compile(pattern).search(value) is None:
                    return False
            except ValueError:
                pass  # a pattern RE2 cannot run (look-around, back-reference): not checked
        if len(value) < (_int(schema, "minLength", 0) or 0):
            return False
        hi = _int(schema, "maxLength", None)
        return hi is None or len(value) <= hi
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        lo = lo if isinstance(lo, int | float) else None
        hi = hi if isinstance(hi, int | float) else None
        return (lo is None or value >= lo) and (hi is None or value <= hi)
    return True


def _array(
    schema: dict[str, Any], rng: np.random.Generator, root: Any, depth: int, budget: _Budget
) -> list[Any]:
    hi = _int(schema, "maxItems", None)
    lo = _int(schema, "minItems", None)
    if lo is None:
        lo = min(1, hi if hi is not None else 1)
    lo = max(0, min(lo, MAX_VALUES))  # the budget stops the array long before anyway
    top = lo + EXTRA_ITEMS if hi is None else max(lo, min(hi, lo + EXTRA_ITEMS))
    size = int(rng.integers(lo, top + 1))
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    prefix = schema.get("prefixItems")
    out: list[Any] = []
    for p in prefix if isinstance(prefix, list) else []:
        if budget.spent():
            return out
        out.append(_instance(p, rng, root, depth + 1, budget))
    seen: set[str] = set()
    attempts = 0
    while len(out) < size and attempts < size * 10 and not budget.spent():
        attempts += 1
        value = _instance(items, rng, root, depth + 1, budget)
        if schema.get("uniqueItems"):
            key = repr(value)
            if key in seen:
                continue
            seen.add(key)
        out.append(value)
    return out


def _string(schema: dict[str, Any], rng: np.random.Generator, max_chars: int) -> str:
    """A string for the schema, at most `max_chars` long (the budget left) whatever `minLength` says."""
    max_chars = max(0, max_chars)
    lo = min(max(0, _int(schema, "minLength", 0) or 0), max_chars)
    hi = _int(schema, "maxLength", None)
    hi = max_chars if hi is None else max(0, min(hi, max_chars))
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
                if lo <= len(found) <= hi:
                    return found
    if text and lo <= len(text) <= hi:
        return text
    if not text:
        words = [_WORDS[int(rng.integers(len(_WORDS)))] for _ in range(int(rng.integers(1, 4)))]
        text = " ".join(words)
    if len(text) < lo:  # words up to minLength (at most the budget), drawn in one call
        picks = rng.integers(len(_WORDS), size=lo // 5 + 1)
        text = " ".join([text, *(_WORDS[int(i)] for i in picks)])
    text = text[:hi]
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
        lo_i = max(-_INT64 // 2, min(_INT64 // 2, math.ceil(lo_f)))
        hi_i = max(-_INT64 // 2, min(_INT64 // 2, math.floor(hi_f)))
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
