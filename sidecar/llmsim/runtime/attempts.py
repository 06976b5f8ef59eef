"""Attempt counters per request key (conversation hash or client request id), for "fail the first
N attempts" and for per-attempt fault decisions.

A bounded LRU: the least recently seen keys are forgotten once `max_keys` is reached (a
forgotten key starts again at attempt 0), so memory stays bounded under any traffic.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_MAX_KEYS = 100_000
"""Keys remembered per process (about 10 MB at most)."""


class AttemptCounter:
    """`next(key)` returns how many times `key` was seen before (0, 1, 2, ...) and counts this one."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys: must be >= 1, got {max_keys}")
        self.max_keys = max_keys
        self._seen: OrderedDict[str, int] = OrderedDict()

    def next(self, key: str) -> int:
        previous = self._seen.pop(key, 0)
        self._seen[key] = previous + 1
        if len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return previous

    def peek(self, key: str) -> int:
        """How many attempts of `key` were counted (without counting one)."""
        return self._seen.get(key, 0)

    def clear(self) -> None:
        self._seen.clear()

    def __len__(self) -> int:
        return len(self._seen)
