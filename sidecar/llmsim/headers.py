"""The request headers llmsim honours (the DESIGN.md contract) and the ones it never logs."""

from __future__ import annotations

from collections.abc import Mapping

from llmsim.api.profile import Mode
from llmsim.providers import catalog

PROFILE = "x-llmsim-profile"
"""Pick a named profile for this request."""
SEED = "x-llmsim-seed"
"""Seed this request's randomness."""
SESSION = "x-llmsim-session"
"""Attribute the request to a session."""
FAULT = "x-llmsim-fault"
"""Force one fault (or `none`) for this request."""
MODE = "x-simulation-mode"
"""simulate | perturb | passthrough, per request."""
REQUEST_IDS = ("x-llmsim-request-id", "x-request-id", "idempotency-key")
"""Client request ids, in order of preference (per-request fault decisions, fail-first)."""
CREDENTIALS = catalog.CREDENTIAL_HEADERS
"""Provider credentials: never logged or exported (the `key=` query parameter neither)."""


def client_request_id(headers: Mapping[str, str]) -> str | None:
    """The first client request id present (lower-case header names)."""
    return next((headers[name] for name in REQUEST_IDS if headers.get(name)), None)


def parse_mode(value: str | None) -> Mode | None:
    """The `x-simulation-mode` value as a Mode; None when absent; ValueError naming the header."""
    if value is None or not value.strip():
        return None
    try:
        return Mode(value.strip().lower())
    except ValueError:
        raise ValueError(f"{MODE}: {value!r} is not one of {', '.join(m.value for m in Mode)}") from None
