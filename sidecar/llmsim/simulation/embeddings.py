"""Deterministic embedding vectors: the same (model, text, dimensions) always gives the same unit vector."""

from __future__ import annotations

import hashlib

import numpy as np

DEFAULT_DIMENSIONS = 1536


def embed(text: str, model: str, dimensions: int | None = None) -> tuple[float, ...]:
    """A unit-length float32-representable vector derived from a hash of model and text."""
    dims = dimensions or DEFAULT_DIMENSIONS
    digest = hashlib.sha256(f"{model}\x00{text}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    vec = rng.standard_normal(dims).astype(np.float32)
    norm = float(np.linalg.norm(vec)) or 1.0
    return tuple(float(x) for x in (vec / norm).astype(np.float32))
