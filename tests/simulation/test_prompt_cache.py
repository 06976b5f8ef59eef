"""Prompt caching: which prefixes are read and written, bounds, expiry, scope, seeded hits, TTFT."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from llmsim import profiles
from llmsim.api.profile import PromptCaching
from llmsim.simulation import planner, tokens
from llmsim.simulation.prompt_cache import PromptCache
from llmsim.simulation.request import GenerationRequest, Message

ON = PromptCaching(enabled=True)
LONG = "lorem ipsum dolor sit amet " * 400  # ~2,000 tokens


def chat(
    text: str, *, provider: str = "openai", key: str = "k1", marks: tuple[int, ...] = (), **kw: Any
) -> GenerationRequest:
    return GenerationRequest(provider=provider, operation="chat", model="m", api_key_id=key, cache_marks=marks,
                             messages=(Message("system", LONG), Message("user", text)), **kw)  # fmt: skip


def test_a_repeated_prefix_is_read_in_blocks_after_the_minimum() -> None:
    cache = PromptCache(1000)
    assert cache.use(chat("first question"), ON, seed=1, now=0).read_tokens == 0
    again = cache.use(chat("first question"), ON, seed=1, now=1).read_tokens
    other = cache.use(chat("a different question entirely"), ON, seed=1, now=2).read_tokens
    assert again >= other >= ON.min_prefix_tokens
    assert (again - ON.min_prefix_tokens) % ON.block_tokens == 0 and (
        other - ON.min_prefix_tokens
    ) % ON.block_tokens == 0
    assert again <= tokens.count(LONG) + tokens.count("first question") + 8


def test_nothing_is_cached_when_off_short_or_for_another_key_or_model() -> None:
    cache = PromptCache(1000)
    off = PromptCaching()
    cache.use(chat("q"), off, seed=1, now=0)
    assert cache.use(chat("q"), off, seed=1, now=1).read_tokens == 0 and len(cache) == 0
    short = GenerationRequest(
        provider="openai", operation="chat", model="m", messages=(Message("user", "hi"),)
    )
    cache.use(short, ON, seed=1, now=0)
    assert cache.use(short, ON, seed=1, now=1).read_tokens == 0
    cache.use(chat("q"), ON, seed=1, now=0)
    assert cache.use(chat("q", key="k2"), ON, seed=1, now=1).read_tokens == 0
    assert cache.use(chat("q", provider="azure"), ON, seed=1, now=1).read_tokens == 0


def test_entries_expire_after_the_ttl_and_the_cache_stays_bounded() -> None:
    cache = PromptCache(1000)
    cache.use(chat("q"), ON, seed=1, now=0)
    assert cache.use(chat("q"), ON, seed=1, now=ON.ttl_s - 1).read_tokens > 0  # refreshed by this use
    assert cache.use(chat("q"), ON, seed=1, now=2 * ON.ttl_s).read_tokens == 0
    small = PromptCache(5)
    for i in range(20):
        small.use(chat(f"q{i}", key=f"key{i}"), ON, seed=1, now=i)
        assert len(small) <= 5
    # least recently used out: the newest prompt is still found
    assert small.use(chat("q19", key="key19"), ON, seed=1, now=21).read_tokens > 0


def test_hits_follow_the_hit_rate_and_are_seeded() -> None:
    settings = PromptCaching(enabled=True, hit_rate=0.3)
    n = 400

    def hits(seed: int) -> list[bool]:
        cache = PromptCache(100_000)
        out = []
        for i in range(n):
            request = chat("q", key=f"key{i}")
            cache.use(request, settings, seed=seed, now=0)
            out.append(cache.use(request, settings, seed=seed, now=1).read_tokens > 0)
        return out

    first = hits(7)
    assert first == hits(7)
    # a miss on the longest prefix tries the shorter ones, each with the same chance
    assert sum(first) > n * 0.3 - 4 * (n * 0.3 * 0.7) ** 0.5


def test_explicit_caching_reads_and_writes_up_to_the_marked_blocks() -> None:
    cache = PromptCache(1000)
    unmarked = chat("q", provider="anthropic")
    cache.use(unmarked, ON, seed=1, now=0)
    assert cache.use(unmarked, ON, seed=1, now=1).read_tokens == 0
    marked = chat("q", provider="anthropic", marks=(0,))  # cache_control on the system prompt
    first = cache.use(marked, ON, seed=1, now=2)
    assert first.read_tokens == 0 and first.written_tokens > ON.min_prefix_tokens
    second = cache.use(chat("another", provider="anthropic", marks=(0,)), ON, seed=1, now=3)
    assert second.read_tokens == first.written_tokens and second.written_tokens == 0


def test_cached_prompts_have_a_lower_ttft_and_report_their_tokens() -> None:
    spec = profiles.parse_spec({"latency": {"ttftMs": {"type": "constant", "value": 400}, "ttftPerInputTokenMs": 0.1},
                                "promptCaching": {"enabled": True, "ttftReduction": 0.5}}, "t")  # fmt: skip
    request = chat("q")
    cold = planner.plan_response(spec, request, np.random.default_rng(1), response_id="r", created=0)
    cache = PromptCache(100)
    cache.use(request, spec.prompt_caching, seed=1, now=0)
    use = cache.use(request, spec.prompt_caching, seed=1, now=1)
    warm = planner.plan_response(
        spec, request, np.random.default_rng(1), response_id="r", created=0, cache=use
    )
    share = use.read_tokens / warm.prompt_tokens
    assert warm.cached_tokens == use.read_tokens and warm.prompt_tokens == cold.prompt_tokens
    expected_ms = 400 * (1 - 0.5 * share) + 0.1 * (warm.prompt_tokens - use.read_tokens)
    assert warm.timing.ttft_s * 1000 == pytest.approx(expected_ms)
    assert cold.timing.ttft_s * 1000 == pytest.approx(400 + 0.1 * cold.prompt_tokens)
