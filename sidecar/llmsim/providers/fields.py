"""Typed access to fields of a JSON request body, raising ApiError that names the field."""

from __future__ import annotations

from typing import Any

from llmsim.providers.base import ApiError, ErrorKind


def _bad(param: str, message: str) -> ApiError:
    return ApiError(ErrorKind.INVALID_REQUEST, message, param=param)


def required(doc: dict[str, Any], key: str, prefix: str = "") -> Any:
    if key not in doc or doc[key] is None:
        raise _bad(prefix + key, f"Missing required parameter: '{prefix + key}'.")
    return doc[key]


def string(doc: dict[str, Any], key: str, *, default: str | None = None, prefix: str = "") -> str | None:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _bad(
            prefix + key,
            f"Invalid type for '{prefix + key}': expected a string, but got {_kind(value)} instead.",
        )
    return value


def integer(
    doc: dict[str, Any], key: str, *, minimum: int | None = None, maximum: int | None = None, prefix: str = ""
) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(
            prefix + key,
            f"Invalid type for '{prefix + key}': expected an integer, but got {_kind(value)} instead.",
        )
    if minimum is not None and value < minimum:
        raise _bad(
            prefix + key,
            f"Invalid '{prefix + key}': integer below minimum value. Expected a value >= {minimum}, but got {value} instead.",
        )
    if maximum is not None and value > maximum:
        raise _bad(
            prefix + key,
            f"Invalid '{prefix + key}': integer above maximum value. Expected a value <= {maximum}, but got {value} instead.",
        )
    return value


def number(doc: dict[str, Any], key: str, *, prefix: str = "") -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(
            prefix + key,
            f"Invalid type for '{prefix + key}': expected a number, but got {_kind(value)} instead.",
        )
    return float(value)


def boolean(doc: dict[str, Any], key: str, *, default: bool = False, prefix: str = "") -> bool:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(
            prefix + key,
            f"Invalid type for '{prefix + key}': expected a boolean, but got {_kind(value)} instead.",
        )
    return value


def obj(doc: dict[str, Any], key: str, *, prefix: str = "") -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(
            prefix + key,
            f"Invalid type for '{prefix + key}': expected an object, but got {_kind(value)} instead.",
        )
    return value


def array(doc: dict[str, Any], key: str, *, prefix: str = "") -> list[Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad(
            prefix + key,
            f"Invalid type for '{prefix + key}': expected an array, but got {_kind(value)} instead.",
        )
    return value


def string_list(
    doc: dict[str, Any], key: str, *, prefix: str = "", max_items: int | None = None
) -> tuple[str, ...]:
    """A string or a list of strings (like OpenAI's `stop`)."""
    value = doc.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if max_items is not None and len(value) > max_items:
            raise _bad(
                prefix + key,
                f"Invalid '{prefix + key}': expected at most {max_items} items, got {len(value)}.",
            )
        return tuple(value)
    raise _bad(prefix + key, f"Invalid type for '{prefix + key}': expected a string or an array of strings.")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__
