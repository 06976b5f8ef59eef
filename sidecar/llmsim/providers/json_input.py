"""Decoding untrusted JSON request bodies: what `json.loads` rejects, and what it accepts but
would break llmsim later, all as one `JsonInputError` with a message for a 4xx.

* not JSON, not UTF-8, nested deeper than the decoder's recursion limit, integers of more than
  4300 digits (Python's `int` conversion limit): `json.loads` raises ValueError or RecursionError;
* an unpaired surrogate escape (`"\\ud800"`): `json.loads` accepts it, but such a string cannot
  be encoded again, so every answer, log line and stored session label holding it would fail;
* a body whose decoding alone would hold the interpreter lock too long: `json.loads` is one C
  call that never lets other threads run, so even decoding in a worker thread (as the pipeline
  does for large bodies) blocks the event loop for the whole decode. The cost is estimated from
  the body's structural characters before decoding (three `bytes.count` passes, a few ms for the
  largest allowed body): a body with more than `MAX_CONTAINERS` `{`/`[` or `MAX_SEPARATORS`
  commas is refused as too large. These budgets are llmsim's own, not a provider's: they keep
  every decode of a body under about 50 ms here, and only bodies far beyond any model's context
  window exceed them.
"""

from __future__ import annotations

import json
import re
from typing import Any

BUDGET_CHECK_BYTES = 1 << 20
"""Bodies up to this size are decoded without the complexity estimate (they decode in a few ms)."""
MAX_CONTAINERS = 50_000
"""Most `{` and `[` characters a body over `BUDGET_CHECK_BYTES` may hold."""
MAX_SEPARATORS = 4_000_000
"""Most `,` characters a body over `BUDGET_CHECK_BYTES` may hold."""
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class JsonInputError(ValueError):
    """A body that cannot be used; `too_large` when it is refused for its decoding cost."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def decode(body: bytes | str) -> Any:
    """The decoded document; JsonInputError saying what is wrong with the body."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if len(raw) > BUDGET_CHECK_BYTES:
        _check_budget(raw)
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise JsonInputError("The request body is not valid JSON: it is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        raise JsonInputError(f"The request body is not valid JSON: {exc}") from None
    if _has_surrogate_escape(raw):
        where = _lone_surrogate(doc)
        if where is not None:
            raise JsonInputError(
                f"The request body is not valid JSON: {where} holds an unpaired UTF-16 surrogate "
                "(such as \\ud800), which is not a character."
            )
    return doc


def _check_budget(raw: bytes) -> None:
    containers = raw.count(b"{") + raw.count(b"[")
    separators = raw.count(b",")
    if containers > MAX_CONTAINERS or separators > MAX_SEPARATORS:
        raise JsonInputError(
            f"Request body too complex to decode within llmsim's per-request budget: {containers} "
            f"objects/arrays and {separators} separators (at most {MAX_CONTAINERS} and "
            f"{MAX_SEPARATORS} in a body over {BUDGET_CHECK_BYTES} bytes).",
            too_large=True,
        )


def _has_surrogate_escape(raw: bytes) -> bool:
    return b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None


def _lone_surrogate(doc: Any) -> str | None:
    """The JSON path of the first string (or key) with an unpaired surrogate, else None."""
    stack: list[tuple[str, Any]] = [("$", doc)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if not _encodable(node):
                return path
        elif isinstance(node, dict):
            for key, value in node.items():
                if not _encodable(key):
                    return f"a key of {path}"
                stack.append((f"{path}.{key}", value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", value) for i, value in enumerate(node))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
