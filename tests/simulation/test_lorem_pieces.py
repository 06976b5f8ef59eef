"""`content.lorem_pieces` is the token split of `content.lorem`, from the same draws."""

from __future__ import annotations

import numpy as np
import pytest

from llmsim.simulation import content, tokens


@pytest.mark.parametrize("n_tokens", [1, 2, 3, 7, 16, 64, 200, 1500])
def test_lorem_pieces_are_the_split_of_lorem_for_every_seed(n_tokens: int) -> None:
    for seed in range(60):
        text = content.lorem(n_tokens, np.random.default_rng(seed))
        pieces = content.lorem_pieces(n_tokens, np.random.default_rng(seed))
        assert pieces == tokens.split(text)
        assert len(pieces) >= n_tokens


def test_lorem_pieces_leave_the_generator_where_lorem_does() -> None:
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    content.lorem(40, a)
    content.lorem_pieces(40, b)
    assert a.integers(1 << 30) == b.integers(1 << 30)
