"""The token estimator counts a long text (sliced, and vectorised for ASCII) exactly as the
pattern counts it whole."""

from __future__ import annotations

import numpy as np
import pytest

from llmsim.simulation import tokens

PIECES = [
    "a",
    "b",
    " ",
    "  ",
    "\n",
    "1",
    "23",
    ".",
    ",",
    "\t ",
    "abcdefghij",
    " x",
    "\x1c",
    " 9999",
    "\x7f",
    " \n",
]


def _pattern_count(text: str) -> int:
    return len(tokens._PIECE.findall(text))


@pytest.mark.parametrize("seed", range(6))
def test_a_long_ascii_text_counts_as_the_pattern_counts_it(seed: int) -> None:
    rng = np.random.default_rng(seed)
    text = "".join(PIECES[i] for i in rng.integers(len(PIECES), size=int(rng.integers(70_000, 600_000))))
    assert tokens.count(text) == _pattern_count(text)


def test_random_ascii_bytes_count_as_the_pattern_counts_them() -> None:
    rng = np.random.default_rng(7)
    text = "".join(chr(c) for c in rng.integers(128, size=1_500_000))
    assert tokens.count(text) == _pattern_count(text)


@pytest.mark.parametrize("seed", range(3))
def test_a_long_mixed_text_counts_as_the_pattern_counts_it(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    mixed = [*PIECES, "é ", "Ä", "日本", "\u3000", " \u2028"]
    text = "".join(mixed[i] for i in rng.integers(len(mixed), size=400_000))
    assert tokens.count(text) == _pattern_count(text)


def test_a_long_text_without_spaces_is_counted_whole() -> None:
    text = "abcdefghij" * 20_000 + "12345" * 10_000
    assert tokens.count(text) == _pattern_count(text)
