"""Reading one YAML or JSON spec document (a profile or a scenario) from text or a file, with
every problem a short line instead of a traceback.

Rejected, naming the problem: an unreadable file, bytes that are not UTF-8 (with the offset), an
empty document (no field at all: an empty scenario used to run the default scenario against
127.0.0.1:8080), YAML/JSON that does not parse, and documents nested deeper than `MAX_DEPTH` or
with more than `MAX_NODES` values (a YAML alias "billion laughs" expands to that; the parser's
own recursion on a 10,000-deep document raised RecursionError).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_DEPTH = 64
"""Deepest nesting a spec document may have (real ones stay under 10)."""
MAX_NODES = 200_000
"""Most values (mappings, lists and scalars, aliases counted each time they are used)."""


class DocumentError(ValueError):
    """What is wrong with the document, as one line."""


def read_file(path: Path) -> Any:
    """The document in the file at `path`; DocumentError naming the problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} (save the file as UTF-8)"
        ) from None
    return parse_text(text)


def parse_text(text: str) -> Any:
    """The document in `text`; DocumentError naming the problem."""
    if not text.strip():
        raise DocumentError("the file is empty (expected a YAML or JSON mapping)")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DocumentError(f"not valid YAML/JSON: {exc}".replace("\n", " ")) from None
    except RecursionError:
        raise DocumentError(f"nested too deeply (more than {MAX_DEPTH} levels)") from None
    if doc is None:
        raise DocumentError("the document is empty: it holds only comments or `null` (expected a mapping)")
    check_shape(doc)
    return doc


def check_shape(doc: Any) -> None:
    """DocumentError when `doc` is deeper than MAX_DEPTH or larger than MAX_NODES (iterative)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise DocumentError(f"too large: more than {MAX_NODES} values (YAML aliases expanding?)")
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise DocumentError(f"nested too deeply (more than {MAX_DEPTH} levels)")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
