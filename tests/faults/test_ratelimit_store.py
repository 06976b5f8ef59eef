"""Bucket stores: per pod, shared in Redis (atomic, same math as the pure module), and the
bounded fallback to per-pod buckets when Redis is unreachable."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest
import redis.asyncio

from llmsim.api.faults import RateLimits
from llmsim.runtime import ratelimit_store
from llmsim.runtime.ratelimit_store import PodBuckets, RateLimiter, RedisBuckets
from llmsim.simulation import ratelimit
from llmsim.simulation.ratelimit import BucketLimits

from .conftest import RedisProcess, free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:redis.*")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_pod_buckets_follow_the_pure_math() -> None:
    lim = BucketLimits.of(RateLimits(requests_per_minute=2))
    pod = PodBuckets()
    results = [pod.take("b", lim, 0, now=0.0).allowed for _ in range(3)]
    assert results == [True, True, False]
    assert pod.take("other", lim, 0, now=0.0).allowed


def test_pod_buckets_are_a_bounded_lru() -> None:
    lim = BucketLimits.of(RateLimits(requests_per_minute=1))
    pod = PodBuckets(max_buckets=2)
    for key in ("a", "b", "c"):
        pod.take(key, lim, 0, now=0.0)
    assert len(pod) == 2
    assert pod.take("a", lim, 0, now=0.0).allowed  # forgotten, so it came back full
    assert not pod.take("c", lim, 0, now=0.0).allowed


async def test_the_limiter_keeps_pod_scope_in_process_and_separates_namespaces() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    spec = RateLimits(requests_per_minute=1)
    assert (await limiter.check(spec, "k", 0, namespace="a")).allowed
    assert not (await limiter.check(spec, "k", 0, namespace="a")).allowed
    assert (await limiter.check(spec, "k", 0, namespace="b")).allowed
    clock.now += 60
    assert (await limiter.check(spec, "k", 0, namespace="a")).allowed


async def test_redis_buckets_compute_exactly_what_the_pure_math_computes(redis_server: RedisProcess) -> None:
    rng = random.Random(11)
    lim = BucketLimits.of(RateLimits(requests_per_minute=30, tokens_per_minute=3000, burst_s=10))
    store = RedisBuckets(redis_server.url, fallback=PodBuckets())
    state: ratelimit.BucketState | None = None
    now = 5000.0
    try:
        for _ in range(300):
            now += rng.choice([0.0, 0.01, 0.3, 1.7, -0.5])  # includes a lagging clock
            cost = rng.choice([0, 10, 200, 900])
            state, expected = ratelimit.take(state, lim, cost, now)
            got = await store.take("llmsim:rl:test|math", lim, cost, now)
            assert got == expected
        assert not store.degraded and store.fallbacks == 0
    finally:
        await store.close()


async def test_shared_buckets_are_one_bucket_for_all_replicas(redis_server: RedisProcess) -> None:
    spec = RateLimits(requests_per_minute=4, scope="shared", redis_url=redis_server.url)
    replicas = [RateLimiter(), RateLimiter(), RateLimiter()]
    try:
        verdicts = await asyncio.gather(*(replicas[i % 3].check(spec, "shared-key", 0) for i in range(9)))
        assert sum(v.allowed for v in verdicts) == 4
        remaining = sorted(v.remaining_requests or 0 for v in verdicts if v.allowed)
        assert remaining == [0, 1, 2, 3]  # atomic: every admitted request saw a distinct count
        assert not any(r.degraded for r in replicas)
    finally:
        for limiter in replicas:
            await limiter.close()


async def test_idle_shared_buckets_expire(redis_server: RedisProcess) -> None:
    spec = RateLimits(requests_per_minute=60, scope="shared", redis_url=redis_server.url)
    limiter = RateLimiter()
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await limiter.check(spec, "ttl-key", 0)
        keys = [k async for k in client.scan_iter(match="llmsim:rl:*ttl-key*")]
        assert len(keys) == 1
        ttl_ms = await client.pttl(keys[0])
        assert 0 < ttl_ms <= 61_000  # refill time of the bucket plus a second
    finally:
        await client.aclose()
        await limiter.close()


async def test_unreachable_redis_falls_back_to_pod_buckets_quickly_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    spec = RateLimits(requests_per_minute=2, scope="shared", redis_url=url)
    limiter = RateLimiter(redis_timeout_s=0.2, redis_retry_every_s=30)
    try:
        with caplog.at_level(logging.WARNING, logger=ratelimit_store.__name__):
            started = time.monotonic()
            verdicts = [await limiter.check(spec, "k", 0) for _ in range(3)]
            elapsed = time.monotonic() - started
        assert [v.allowed for v in verdicts] == [True, True, False]  # still limited, per pod
        assert elapsed < 1.0
        assert limiter.degraded and limiter.fallbacks == 3
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "falling back to per-pod buckets" in warnings[0]
        # ... and /metrics says so too.
        from prometheus_client import CollectorRegistry, generate_latest

        from llmsim.server.observability import RateLimiterCollector

        registry = CollectorRegistry()
        registry.register(RateLimiterCollector(lambda: limiter))
        text = generate_latest(registry).decode()
        assert "llmsim_ratelimit_shared_degraded 1.0" in text
        assert "llmsim_ratelimit_fallbacks_total 3.0" in text
    finally:
        await limiter.close()


async def test_a_redis_that_comes_back_is_used_again(redis_factory: type[RedisProcess]) -> None:
    port = free_port()
    spec = RateLimits(requests_per_minute=1, scope="shared", redis_url=f"redis://127.0.0.1:{port}/0")
    monotonic = FakeClock(0.0)
    limiter = RateLimiter(redis_timeout_s=0.2, redis_retry_every_s=5)
    store = limiter.shared(spec.redis_url)
    store._monotonic = monotonic  # injected clock for the retry schedule
    try:
        await limiter.check(spec, "k", 0)
        assert limiter.degraded
        redis_factory(port).start()
        monotonic.now = 4.0  # still inside the back-off: Redis is not asked
        await limiter.check(spec, "k", 0)
        assert limiter.degraded and store.fallbacks == 2
        monotonic.now = 5.0
        verdict = await limiter.check(spec, "k", 0)
        assert not limiter.degraded and verdict.allowed and store.fallbacks == 2
    finally:
        await limiter.close()


def test_redis_urls_are_redacted_in_logs() -> None:
    assert ratelimit_store._redact("redis://:secret@host:6379/0") == "redis://***@host:6379/0"
    assert ratelimit_store._redact("redis://host:6379/0") == "redis://host:6379/0"
