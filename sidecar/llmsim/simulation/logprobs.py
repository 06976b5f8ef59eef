"""Log probabilities of a reply's tokens, for requests that ask for them. Pure given the rng.

Each token's probability p is exp(-x) with x exponential (mean `MEAN_SURPRISE` nats), so most
tokens are near-certain and a few are not, as in real models' outputs. The alternatives at a
position share the remaining mass 1 - p geometrically (the j-th gets (1 - p)(1 - s)s^j, s
drawn per token in [0.3, 0.7]), so every position's probabilities sum to at most 1. The
alternatives are other tokens of the lorem vocabulary, distinct from each other and from the
chosen one. `top` lists the most likely tokens (the chosen one among them when it ranks),
in descending order, as the providers list them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MEAN_SURPRISE = 0.3
"""Mean of -logprob of a chosen token, in nats."""
MAX_TOP = 20
"""Most alternatives per position any provider returns."""
_POOL = (
    " the", " and", " of", " to", " in", " a", " is", " that", ",", ".", " for", " it", " with", " as",
    " on", " be", " at", " by", " this", " from", " or", " an", " are", " was", " lorem", " ipsum",
    " dolor", " sit", " amet", " sed", " ut", " enim", " magna", " aliqua", " minim", " veniam",
)  # fmt: skip


@dataclass(frozen=True)
class TokenLogprob:
    """One output token's log probability and the most likely tokens at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()
    """Up to the requested number of (token, logprob), most likely first."""


def for_pieces(pieces: Sequence[str], top_n: int, rng: np.random.Generator) -> tuple[TokenLogprob, ...]:
    """Log probabilities for each token piece, with `top_n` (0..20) most likely tokens each."""
    n = len(pieces)
    if n == 0:
        return ()
    top_n = max(0, min(top_n, MAX_TOP))
    chosen = -rng.exponential(MEAN_SURPRISE, n)
    if top_n == 0:
        return tuple(TokenLogprob(p, round(float(lp), 6)) for p, lp in zip(pieces, chosen, strict=True))
    ratio = rng.uniform(0.3, 0.7, n)
    starts = rng.integers(len(_POOL), size=n)
    out: list[TokenLogprob] = []
    for i, piece in enumerate(pieces):
        lp = float(chosen[i])
        rest = 1.0 - math.exp(lp)
        s = float(ratio[i])
        candidates = [(piece, lp)]
        j, k = 0, int(starts[i])
        while len(candidates) < top_n + 1 and j < len(_POOL):
            token = _POOL[(k + j) % len(_POOL)]
            j += 1
            if token == piece:
                continue
            mass = rest * (1 - s) * s ** (len(candidates) - 1)
            candidates.append((token, math.log(mass) if mass > 0 else -9999.0))
        candidates.sort(key=lambda c: -c[1])
        top = tuple((t, round(v, 6)) for t, v in candidates[:top_n])
        out.append(TokenLogprob(piece, round(lp, 6), top))
    return tuple(out)
