"""Errors that carry a user-facing message; the CLI prints them as one line each."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError


class LLMSimError(Exception):
    """Base of llmsim's user-facing errors."""


class ProfileError(LLMSimError):
    """A profile could not be loaded; `problems` are 'field.path: message' lines."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


def describe_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    """Turn a pydantic ValidationError into 'field.path: problem' lines (camelCase paths)."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]]
        path = prefix
        for part in parts:
            if part.startswith("["):
                path += part
            else:
                path = f"{path}.{part}" if path else part
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            message = "unknown field (not part of the schema; check the spelling)"
        lines.append(f"{path or '<root>'}: {message}")
    return lines
