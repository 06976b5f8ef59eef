"""Generate a string that a regular expression matches (JSON Schema `pattern`). Pure given the rng.

The pattern is parsed with Python's own regex parser (`re._parser`, the parser behind `re`), and
a string is built from its parse tree: literals, classes and categories (`\\d`, `\\w`, `\\s`,
negated classes), `.`, alternation, groups and back-references. Repetitions are bounded: at
most `EXTRA_REPEATS` beyond their minimum, the whole string at most `MAX_LENGTH` characters, and
the walk at most `MAX_STEPS` parse-tree nodes (`((){65535}){65535}` emits nothing but would
visit 65535**2 nodes), so a hostile pattern can neither make a reply grow without limit nor
keep the generator busy. Anchors and look-arounds add nothing. The result is checked with the
linear-time engine (`linear_regex`, JSON Schema's search semantics): a pattern RE2 cannot run
(look-arounds, back-references) or a miss gives None, and the caller falls back.
"""

from __future__ import annotations

import re
import string

# The parser behind `re` (a private module of the standard library since 3.11; untyped).
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser as _p  # type: ignore[attr-defined]
from typing import Any

import numpy as np

from llmsim import linear_regex

EXTRA_REPEATS = 3
"""A repetition `x{m,n}` (or `*`, `+`) repeats x between m and min(n, m + this) times."""
MAX_LENGTH = 256
"""Generation stops adding characters beyond this length."""
MAX_STEPS = 4096
"""Generation stops after visiting this many parse-tree nodes."""
_MAX_DEPTH = 32


_CATEGORIES: dict[Any, str] = {
    _c.CATEGORY_DIGIT: string.digits,
    _c.CATEGORY_NOT_DIGIT: string.ascii_letters + "_-",
    _c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    _c.CATEGORY_NOT_WORD: " -.,:/",
    _c.CATEGORY_SPACE: " ",
    _c.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
}
_PRINTABLE = string.ascii_letters + string.digits + " _-.,:/@"


class _Builder:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.out: list[str] = []
        self.groups: dict[int, str] = {}
        self.length = 0
        self.steps = 0

    def done(self) -> bool:
        return self.length >= MAX_LENGTH or self.steps >= MAX_STEPS

    def pick(self, options: str) -> str:
        return options[int(self.rng.integers(len(options)))] if options else ""

    def emit(self, text: str) -> None:
        if self.length < MAX_LENGTH:
            self.out.append(text)
            self.length += len(text)

    def klass(self, items: list[tuple[Any, Any]]) -> str:
        """A character that the class `[...]` matches."""
        negate = bool(items) and items[0][0] is _c.NEGATE
        if negate:
            excluded = "".join(self.klass_members(items[1:]))
            allowed = "".join(ch for ch in _PRINTABLE if ch not in excluded)
            return self.pick(allowed)
        return self.pick("".join(self.klass_members(items)))

    def klass_members(self, items: list[tuple[Any, Any]]) -> list[str]:
        members: list[str] = []
        for op, arg in items:
            if op is _c.LITERAL:
                members.append(chr(arg))
            elif op is _c.RANGE:
                lo, hi = arg
                members.extend(chr(c) for c in range(lo, min(hi, lo + 94) + 1))
            elif op is _c.CATEGORY:
                members.append(_CATEGORIES.get(arg, "a"))
        return members

    def walk(self, pattern: Any, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            return
        for op, arg in pattern:
            self.steps += 1
            if self.done():
                return
            if op is _c.LITERAL:
                self.emit(chr(arg))
            elif op is _c.NOT_LITERAL:
                self.emit(self.pick("".join(ch for ch in _PRINTABLE if ord(ch) != arg)))
            elif op is _c.ANY:
                self.emit(self.pick(string.ascii_letters + string.digits))
            elif op is _c.IN:
                self.emit(self.klass(list(arg)))
            elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
                lo, hi, sub = arg
                top = lo + EXTRA_REPEATS if hi is _c.MAXREPEAT else min(hi, lo + EXTRA_REPEATS)
                for _ in range(int(self.rng.integers(lo, top + 1))):
                    if self.done():
                        break
                    self.walk(sub, depth + 1)
            elif op is _c.SUBPATTERN:
                group, _, _, sub = arg
                start = len(self.out)
                self.walk(sub, depth + 1)
                if group is not None:
                    self.groups[group] = "".join(self.out[start:])
            elif op is getattr(_c, "ATOMIC_GROUP", None):
                self.walk(arg, depth + 1)
            elif op is _c.BRANCH:
                _, alternatives = arg
                self.walk(alternatives[int(self.rng.integers(len(alternatives)))], depth + 1)
            elif op is _c.GROUPREF:
                self.emit(self.groups.get(arg, ""))
            elif op is _c.GROUPREF_EXISTS:
                group, yes, no = arg
                branch = yes if group in self.groups else no
                if branch is not None:
                    self.walk(branch, depth + 1)
            # AT (anchors), ASSERT / ASSERT_NOT (look-arounds): nothing to emit


def generate(pattern: str, rng: np.random.Generator) -> str | None:
    """A string `re.search(pattern, s)` accepts, or None (invalid pattern, one RE2 cannot run, or
    no luck)."""
    try:
        compiled = linear_regex.compile(pattern)
        parsed = _p.parse(pattern)
    except (ValueError, re.error, RecursionError, OverflowError):
        return None
    for _ in range(4):
        builder = _Builder(rng)
        builder.walk(parsed)
        text = "".join(builder.out)
        if compiled.search(text):
            return text
    return None
