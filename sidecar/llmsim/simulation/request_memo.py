"""Values derived from a whole request, computed once per request object.

A request's prompt token count and conversation hash each take a pass over every message; the
fault check, the plan and the record all need them, and for a prompt of megabytes each pass is
tens of milliseconds. They are remembered by the request's identity (a weak reference: an entry
leaves with its request and keeps nothing alive), so the pipeline can compute them in a worker
thread for a large body and the event loop then only reads them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from llmsim.simulation.request import GenerationRequest

_MEMO: dict[tuple[int, str], tuple[weakref.ref[GenerationRequest], Any]] = {}


def remembered[T](request: GenerationRequest, name: str, compute: Callable[[GenerationRequest], T]) -> T:
    """`compute(request)`, computed once per request object and `name`."""
    key = (id(request), name)
    known = _MEMO.get(key)
    if known is not None and known[0]() is request:
        value: T = known[1]
        return value
    value = compute(request)
    _MEMO[key] = (weakref.ref(request, lambda _ref, key=key: _MEMO.pop(key, None)), value)  # type: ignore[misc]
    return value


def store(request: GenerationRequest, name: str, value: Any) -> None:
    """Remember `value` as `name` of `request` (computed elsewhere, e.g. in a worker process)."""
    key = (id(request), name)
    _MEMO[key] = (weakref.ref(request, lambda _ref, key=key: _MEMO.pop(key, None)), value)  # type: ignore[misc]
