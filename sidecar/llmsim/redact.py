"""Credential redaction: the one layer every log record, report field and stored scenario of
llmsim passes through (serve, proxy, operator, load, telemetry). Pure, except `install_logging`.

What counts as a credential:

* the values of credential headers (`SECRET_HEADERS`: the providers' own, `Proxy-Authorization`,
  `Cookie`, `Set-Cookie`, `Ocp-Apim-Subscription-Key`, ...), wherever they appear: a header
  mapping, a `Name: value` line (also inside a `b'...'` repr, as aiohttp's parser errors print
  raw header lines), a `'name': 'value'` dict repr, `name=value`;
* the values of credential query parameters (`SECRET_QUERY`: `key`, `api_key`, `api-key`,
  `token`, `access_token`, `sig`, ...) in URLs and free text;
* URL userinfo (`https://user:pass@host` -> `https://redacted@host`);
* `Bearer`/`Basic` credentials, and strings shaped like provider API keys (`sk-...`, `AIza...`)
  anywhere;
* the raw request bytes aiohttp's parser errors quote (`LineTooLong ... b'...'`,
  `Invalid header value char: b'Name: value'`), whatever the header.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llmsim.providers import catalog

SECRET_HEADERS = frozenset(
    {
        *catalog.CREDENTIAL_HEADERS,
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
        "ocp-apim-subscription-key", "x-goog-api-key", "x-auth-token", "x-access-token",
        "x-amz-security-token", "x-csrf-token", "x-xsrf-token",
    }
)  # fmt: skip
"""Header names whose values are never logged, reported or stored."""

SECRET_QUERY = frozenset(
    {
        "key", "api_key", "api-key", "apikey", "token", "access_token", "id_token",
        "refresh_token", "auth", "sig", "signature", "secret", "client_secret", "password",
        "x-amz-signature", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    }
)  # fmt: skip
"""Query parameter names whose values are never logged, reported or stored."""

SECRET_FIELDS = frozenset(
    {"apikey", "api_key", "api-key", "password", "secret", "token", "access_token", "client_secret"}
)
"""Keys of structured documents (reports, scenarios) whose values are secrets (matched lower-cased)."""

REDACTED = "<redacted>"
URL_USER = "redacted"
"""What URL userinfo becomes (a valid userinfo, so the URL stays a URL)."""


def _alternation(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@'\"<>]+@")
_QUERY = re.compile(rf"(?i)([?&;](?:{_alternation(SECRET_QUERY)})=)(?![\s'\"]*<redacted>)[^&#\s'\"<>]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+(?![\s'\"]*<redacted>)[A-Za-z0-9._~+/=:-]{4,}")
# `Name: value`, `name=value`, `'name': 'value'`, `("name", "value")`, `b'Name: value\r\n'`
_INLINE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_-])((?:{_alternation(SECRET_HEADERS)})['\"]?(?:\s*[:=]\s*|['\"]?\s*,\s*)['\"]?)"
    r"(?![\s'\"]*<redacted>)((?:[^\s,;'\"\\]|\\(?![rnt'\"]))+(?:[ \t]+(?:[^\s,;'\"\\]|\\(?![rnt'\"]))+)?)"
)
_COOKIE = re.compile(
    r"(?i)\b((?:set-)?cookie['\"]?(?:\s*[:=]\s*|\s*,\s*)['\"]?)(?![\s'\"]*<redacted>)(?:[^\r\n'\"\\]|\\(?![rn'\"]))+"
)
# aiohttp's parser errors quote raw request bytes: "Got more than 8190 bytes when reading: b'...'"
# and "Invalid header value char:\n\n    b'Name: value'\n    ^": whatever header it was, the value goes
_RAW_READING = re.compile(r"(when reading[^:\n]*:\s*b)(['\"])(?![\s'\"]*<redacted>)[^\n]*?\2")
_RAW_LINE = re.compile(
    r"(?m)^([ \t]+b(['\"])(?:[A-Za-z0-9!#$%&*+.^_`|~-]+:[ \t]*)?+)(?![\s'\"]*<redacted>)[^\n]*?(\2)[ \t]*$"
)
_KEY_SHAPES = re.compile(
    r"\b(?:sk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,}|xox[abp]-[A-Za-z0-9-]{8,})"
)


def redact_url(url: str) -> str:
    """URL userinfo and the values of credential query parameters replaced."""
    url = _USERINFO.sub(lambda m: f"{m.group(1)}{URL_USER}@", url)
    return _QUERY.sub(lambda m: m.group(1) + REDACTED, url)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy with secret header values replaced (keys lower-cased)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k.lower(): (REDACTED if k.lower() in SECRET_HEADERS else redact_text(v)) for k, v in items}


def redact_text(text: str) -> str:
    """Scrub free text (log messages, exception strings, report notes) of anything that looks like a
    credential."""
    if not text:
        return text
    text = redact_url(text)
    text = _RAW_READING.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)
    text = _RAW_LINE.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
    text = _COOKIE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _INLINE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    return _KEY_SHAPES.sub(REDACTED, text)


def redact_document(doc: Any) -> Any:
    """A copy of a JSON-like document (report.json, a scenario, a ConfigMap's data) with every
    string scrubbed and the values of credential keys (headers, `apiKey`, `password`, ...) replaced."""
    if isinstance(doc, str):
        return redact_text(doc)
    if isinstance(doc, Mapping):
        out: dict[Any, Any] = {}
        for key, value in doc.items():
            low = key.lower() if isinstance(key, str) else key
            if (low in SECRET_HEADERS or low in SECRET_FIELDS) and isinstance(value, str | int | float):
                out[key] = REDACTED if value != "" else value
            else:
                out[key] = redact_document(value)
        return out
    if isinstance(doc, list | tuple):
        return [redact_document(v) for v in doc]
    return doc


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a log record in place: its message (with its arguments merged in), its exception
    text and its stack text. The exception is kept only as redacted text (`exc_text`)."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed call (bad %-args): keep what can be shown
        message = f"{record.msg!r} {record.args!r}"
    record.msg, record.args = redact_text(message), None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact_text(text)
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A `logging` filter that scrubs every record (for handlers set up outside `install_logging`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_installed: list[Callable[..., logging.LogRecord]] = []


def install_logging() -> None:
    """Redact every log record of the process when it is created (whatever logger, handler or
    exporter then sees it: stderr, kopf's handlers, an OpenTelemetry log exporter). Idempotent."""
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(previous(*args, **kwargs))

    _installed.append(previous)
    logging.setLogRecordFactory(factory)
