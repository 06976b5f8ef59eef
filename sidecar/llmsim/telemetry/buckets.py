"""Histogram bucket boundaries of the latency metrics, shared by `serve`, the proxy and the load
generator so that their quantiles are computed on the same grid.

Chosen for LLM latencies: a classic Prometheus histogram estimates a quantile by linear
interpolation inside the bucket that holds it, so the estimate can be off by up to that bucket's
width. The boundaries are therefore dense where the values live (relative width <= 1/3 between
200 ms and 5 s for TTFT, between 10 and 100 ms for ITL) and coarse at the extremes. Each variable
`LLMSIM_TTFT_BUCKETS_S`, `LLMSIM_ITL_BUCKETS_S`, `LLMSIM_E2E_BUCKETS_S` (comma-separated seconds,
increasing) replaces one list; give every process of a deployment the same values.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from llmsim.errors import LLMSimError

TTFT_BUCKETS_S: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75,
    1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
)  # fmt: skip
"""Time to first token: 10 ms (cache hits, small local models) to 60 s (queues, reasoning models)."""

ITL_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
    0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0,
)  # fmt: skip
"""Inter-token latency: 1 ms to 5 s, dense between 10 and 100 ms (10 to 100 tokens/s), where decode
speeds live; `slow_stream` faults land in the hundreds of ms."""

E2E_BUCKETS_S: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
    45.0, 60.0, 90.0, 120.0, 180.0, 300.0,
)  # fmt: skip
"""End-to-end: 50 ms (short non-streamed answers) to 5 minutes (long generations)."""

MAX_BUCKETS = 60
"""More boundaries than this per histogram multiply the series count without a useful gain."""


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(float(part) for part in value.replace(" ", "").split(",") if part)
    return value


def _check(value: tuple[float, ...]) -> tuple[float, ...]:
    if len(value) < 2:
        raise ValueError("give at least two boundaries")
    if len(value) > MAX_BUCKETS:
        raise ValueError(f"at most {MAX_BUCKETS} boundaries, got {len(value)}")
    for bound in value:
        if not math.isfinite(bound) or bound <= 0:
            raise ValueError(f"boundary {bound:g} must be a positive number of seconds (+Inf is implied)")
    for low, high in itertools.pairwise(value):
        if high <= low:
            raise ValueError(f"boundaries must increase: {high:g} follows {low:g}")
    return value


class BucketSettings(BaseSettings):
    """Bucket boundaries in seconds; each field reads `LLMSIM_<FIELD>` (comma-separated)."""

    model_config = SettingsConfigDict(
        env_prefix="LLMSIM_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    ttft_buckets_s: Annotated[tuple[float, ...], NoDecode] = TTFT_BUCKETS_S
    """Upper bounds of the time-to-first-token buckets."""
    itl_buckets_s: Annotated[tuple[float, ...], NoDecode] = ITL_BUCKETS_S
    """Upper bounds of the inter-token latency buckets."""
    e2e_buckets_s: Annotated[tuple[float, ...], NoDecode] = E2E_BUCKETS_S
    """Upper bounds of the end-to-end latency buckets."""

    _split_text = field_validator("ttft_buckets_s", "itl_buckets_s", "e2e_buckets_s", mode="before")(_split)
    _increasing = field_validator("ttft_buckets_s", "itl_buckets_s", "e2e_buckets_s", mode="after")(_check)


@dataclass(frozen=True)
class LatencyBuckets:
    """The three boundary lists one process uses."""

    ttft: tuple[float, ...] = TTFT_BUCKETS_S
    itl: tuple[float, ...] = ITL_BUCKETS_S
    e2e: tuple[float, ...] = E2E_BUCKETS_S

    @classmethod
    def from_env(cls) -> LatencyBuckets:
        """The boundaries from `LLMSIM_{TTFT,ITL,E2E}_BUCKETS_S`; LLMSimError naming the variable."""
        try:
            settings = BucketSettings()
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = str(err["loc"][0]) if err["loc"] else "buckets"
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "value_error" and "could not convert" in message:
                message = "not a comma-separated list of numbers"
            raise LLMSimError(f"LLMSIM_{field.upper()}: {message}") from None
        return cls(settings.ttft_buckets_s, settings.itl_buckets_s, settings.e2e_buckets_s)
