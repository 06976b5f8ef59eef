"""Attempt counters for fail-first and per-attempt decisions."""

from __future__ import annotations

import pytest

from llmsim.runtime.attempts import AttemptCounter


def test_attempts_count_from_zero_per_key() -> None:
    counter = AttemptCounter()
    assert [counter.next("a"), counter.next("a"), counter.next("b"), counter.next("a")] == [0, 1, 0, 2]
    assert counter.peek("a") == 3 and counter.peek("z") == 0


def test_the_least_recently_seen_key_is_forgotten_first() -> None:
    counter = AttemptCounter(max_keys=2)
    counter.next("a")
    counter.next("b")
    counter.next("a")  # a is now the most recent
    counter.next("c")  # evicts b
    assert len(counter) == 2
    assert counter.next("b") == 0 and counter.peek("a") == 0  # b came back, which evicted a


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys: must be >= 1"):
        AttemptCounter(max_keys=0)
