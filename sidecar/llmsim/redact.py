"""Credential redaction for everything llmsim logs or exports (proxy, telemetry). Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from llmsim.providers import catalog

SECRET_HEADERS = frozenset({*catalog.CREDENTIAL_HEADERS, "proxy-authorization"})
"""Header names whose values are never logged."""

REDACTED = "<redacted>"

_QUERY_KEY = re.compile(r"(?i)([?&;](?:key|api[-_]?key)=)[^&#\s]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_INLINE = re.compile(
    rf"(?i)\b({'|'.join(map(re.escape, catalog.CREDENTIAL_HEADERS))})(\s*[:=]\s*)([^\s,;]+(?:\s+[^\s,;]+)?)"
)


def redact_url(url: str) -> str:
    """Replace `key=` / `api_key=` query values."""
    return _QUERY_KEY.sub(lambda m: m.group(1) + REDACTED, url)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy with secret header values replaced (keys lower-cased)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k.lower(): (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in items}


def redact_text(text: str) -> str:
    """Scrub free text (log messages, exception strings) of anything that looks like a credential."""
    text = _INLINE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    return redact_url(text)


class RedactingFilter:
    """A `logging` filter that scrubs every record's message (install on handlers)."""

    def filter(self, record: object) -> bool:
        import logging

        if isinstance(record, logging.LogRecord):
            message = record.getMessage()
            record.msg, record.args = redact_text(message), ()
        return True
