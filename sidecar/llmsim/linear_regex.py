"""Regular expressions that match in linear time: profile rules and request schemas use these.

Python's `re` backtracks: `^(a+)+$` against forty `a`s and a `!` takes minutes, and even `.*x`
is quadratic (39 s against a 100,000-character prompt). A profile regex runs against every
prompt, and a request's JSON Schema `pattern` comes from whoever sends the request, so both are
compiled with RE2 (google-re2), whose automaton matches in time linear in the text whatever the
pattern. RE2's syntax is Python's without the constructs that need backtracking: named groups
`(?P<name>...)`, classes, `\\d \\w \\s` (ASCII), anchors, lazy and bounded repetitions (up to
1000) all work; back-references and look-arounds are rejected with the engine's reason.

The standard library's `re` stays for llmsim's own fixed patterns.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import re2  # type: ignore[import-untyped]

_MAX_MEM = 8 << 20
"""RE2's memory budget for one compiled pattern (its default); bigger programs are rejected."""


class Match(Protocol):
    """What a match offers (the subset of `re.Match` llmsim uses)."""

    def groups(self) -> tuple[str | None, ...]: ...

    def groupdict(self) -> dict[str, str | None]: ...


class Pattern:
    """A compiled pattern; `search` finds the first match anywhere in the text, like `re.search`."""

    def __init__(self, source: str, compiled: Any) -> None:
        self.source = source
        self._compiled = compiled

    def search(self, text: str) -> Match | None:
        try:
            found: Match | None = self._compiled.search(text)
        except UnicodeEncodeError:  # a lone surrogate: RE2 matches UTF-8
            found = self._compiled.search(text.encode("utf-8", "replace").decode("utf-8"))
        return found


def _options(ignore_case: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is raised (and named by the caller), not printed to stderr
    options.case_sensitive = not ignore_case
    options.max_mem = _MAX_MEM
    return options


@functools.lru_cache(maxsize=512)
def compile(pattern: str, *, ignore_case: bool = False) -> Pattern:
    """The compiled pattern; ValueError saying why RE2 rejects it (e.g. a back-reference)."""
    try:
        return Pattern(pattern, re2.compile(pattern, _options(ignore_case)))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"not a valid regular expression for llmsim's linear-time engine (RE2 syntax): {reason}"
        ) from None
    except (TypeError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None


def problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used (None when it compiles)."""
    try:
        compile(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def search(pattern: str, text: str, *, ignore_case: bool = False) -> Match | None:
    """`re.search` in linear time; None also when the pattern does not compile."""
    try:
        compiled = compile(pattern, ignore_case=ignore_case)
    except ValueError:
        return None
    return compiled.search(text)
