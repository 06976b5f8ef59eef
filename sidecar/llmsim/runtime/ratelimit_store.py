"""Where rate-limit buckets live: in this process (`scope: pod`) or in Redis (`scope: shared`).

The arithmetic is `simulation/ratelimit.py`; this module only keeps state.

Shared buckets run one Lua script per request inside Redis, so the refill, the check and the
debit are atomic across every replica. Each replica passes its own wall-clock time; time never
runs backwards in a bucket (a replica whose clock lags refills nothing), so modest clock skew
only delays refills a little.

Fallback when Redis is unreachable (documented in docs/faults.md): each Redis call is bounded
by `timeout_s` (no client-side retries). On a failure the store logs one warning, sets
`degraded`, counts `fallbacks` (see `RateLimiter.degraded` and `.fallbacks`, for metrics) and
serves the request from a per-pod bucket instead, so a replica then admits up to the full limit
on its own. It does not call Redis again for `retry_every_s`; the first call that succeeds after
that clears the flag and logs the recovery. Buckets kept per pod during the outage are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from llmsim.api.faults import RateLimits
from llmsim.simulation import ratelimit

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL_ENV = "LLMSIM_REDIS_URL"
CLOSE_TIMEOUT_S = 0.5
"""Longest wait for the Redis connections to close at shutdown."""
KEY_PREFIX = "llmsim:rl:"

Clock = Callable[[], float]

# KEYS[1]: the bucket hash. ARGV: now, requests capacity, requests rate, tokens capacity,
# tokens rate (capacity < 0: unlimited), token cost, ttl in ms. Returns the refilled state
# before the debit (requests, tokens, at) as exact decimal strings; the caller derives the
# verdict from it with ratelimit.admit, which makes the same comparisons as this script.
TAKE_LUA = """
local now = tonumber(ARGV[1])
local rcap, rrate = tonumber(ARGV[2]), tonumber(ARGV[3])
local tcap, trate = tonumber(ARGV[4]), tonumber(ARGV[5])
local cost = tonumber(ARGV[6])
local s = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
local r, t, at
if s[3] then
  r, t, at = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
  local elapsed = math.max(0, now - at)
  if rcap >= 0 then r = math.min(rcap, r + rrate * elapsed) end
  if tcap >= 0 then t = math.min(tcap, t + trate * elapsed) end
  at = math.max(now, at)
else
  r, t, at = math.max(rcap, 0), math.max(tcap, 0), now
end
local br, bt = r, t
if (rcap < 0 or r >= 1) and (tcap < 0 or t >= cost) then
  if rcap >= 0 then r = r - 1 end
  if tcap >= 0 then t = t - cost end
end
local function f(x) return string.format('%.17g', x) end
redis.call('HSET', KEYS[1], 'r', f(r), 't', f(t), 'at', f(at))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
return {f(br), f(bt), f(at)}
"""


def bucket_id(namespace: str, spec: RateLimits, key: str) -> str:
    """The store key of a bucket pair: namespace (profile), the request's bucket key and the limits
    themselves (so a changed limit starts a fresh bucket instead of inheriting a wrong one)."""
    limits = f"{spec.requests_per_minute or '-'}/{spec.tokens_per_minute or '-'}/{spec.burst_s:g}"
    return f"{KEY_PREFIX}{namespace}|{key}|{limits}"


class PodBuckets:
    """Buckets in this process: a bounded LRU (forgotten buckets come back full)."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self.max_buckets = max_buckets
        self._states: OrderedDict[str, ratelimit.BucketState] = OrderedDict()

    def take(self, bucket: str, limits: ratelimit.BucketLimits, cost: int, now: float) -> ratelimit.Verdict:
        state, verdict = ratelimit.take(self._states.pop(bucket, None), limits, cost, now)
        self._states[bucket] = state
        if len(self._states) > self.max_buckets:
            self._states.popitem(last=False)
        return verdict

    def peek(self, bucket: str, limits: ratelimit.BucketLimits, now: float) -> ratelimit.Verdict:
        """The bucket pair's state at `now`, charging nothing."""
        return ratelimit.observe(self._states.get(bucket), limits, now)[1]

    def clear(self) -> None:
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)


class RedisBuckets:
    """Buckets in Redis, shared by every replica, with a bounded per-pod fallback."""

    def __init__(
        self,
        url: str,
        *,
        fallback: PodBuckets,
        timeout_s: float = 0.25,
        retry_every_s: float = 5.0,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry_every_s = retry_every_s
        self.degraded = False
        self.fallbacks = 0
        self._fallback = fallback
        self._monotonic = monotonic
        self._skip_until = 0.0
        self._client: Any = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._script: Any = self._client.register_script(TAKE_LUA)

    async def take(
        self, bucket: str, limits: ratelimit.BucketLimits, cost: int, now: float
    ) -> ratelimit.Verdict:
        if self._monotonic() >= self._skip_until:
            try:
                state = await asyncio.wait_for(self._eval(bucket, limits, cost, now), self.timeout_s)
            except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
                self._fail(exc)
            else:
                self._recovered()
                return ratelimit.admit(state, limits, cost)[1]
        self.fallbacks += 1
        return self._fallback.take(bucket, limits, cost, now)

    async def _eval(
        self, bucket: str, limits: ratelimit.BucketLimits, cost: int, now: float
    ) -> ratelimit.BucketState:
        req, tok = limits.requests, limits.tokens
        args = [
            repr(now),
            repr(req.capacity if req else -1.0),
            repr(req.rate if req else 0.0),
            repr(tok.capacity if tok else -1.0),
            repr(tok.rate if tok else 0.0),
            str(cost),
            str(max(1000, int(limits.ttl_s * 1000) + 1000)),
        ]
        raw = await self._script(keys=[bucket], args=args)
        requests, tokens, at = (float(x) for x in raw)
        return ratelimit.BucketState(requests=requests, tokens=tokens, at=at)

    def _fail(self, exc: BaseException) -> None:
        self._skip_until = self._monotonic() + self.retry_every_s
        if not self.degraded:
            self.degraded = True
            log.warning(
                "shared rate limits: Redis at %s unreachable (%s); falling back to per-pod buckets, "
                "retrying Redis every %gs",
                _redact(self.url),
                type(exc).__name__ if not str(exc) else exc,
                self.retry_every_s,
            )

    def _recovered(self) -> None:
        if self.degraded:
            self.degraded = False
            self._fallback.clear()
            log.warning(
                "shared rate limits: Redis at %s reachable again; buckets are shared again", _redact(self.url)
            )

    async def close(self) -> None:
        """Close the connection pool, waiting at most `CLOSE_TIMEOUT_S` (a Redis that stopped
        answering must not hold the process's exit)."""
        try:
            await asyncio.wait_for(self._client.aclose(), CLOSE_TIMEOUT_S)
        except (TimeoutError, OSError, redis.exceptions.RedisError):
            log.warning(
                "shared rate limits: closing the Redis connections to %s timed out", _redact(self.url)
            )


class RateLimiter:
    """One per serving process: routes each check to the pod or the shared store of its spec."""

    def __init__(
        self, *, clock: Clock = time.time, redis_timeout_s: float = 0.25, redis_retry_every_s: float = 5.0
    ) -> None:
        self.clock = clock
        self.pod = PodBuckets()
        self.advertised = PodBuckets()
        """Buckets behind the headers of the default tier (`rate_tiers`): charged, never rejecting."""
        self._fallback = PodBuckets()
        self._redis: dict[str, RedisBuckets] = {}
        self._redis_timeout_s = redis_timeout_s
        self._redis_retry_every_s = redis_retry_every_s

    def shared(self, url: str | None) -> RedisBuckets:
        """The shared store for `url` (default: `$LLMSIM_REDIS_URL`, else the local Redis)."""
        url = url or os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL
        store = self._redis.get(url)
        if store is None:
            store = self._redis[url] = RedisBuckets(
                url,
                fallback=self._fallback,
                timeout_s=self._redis_timeout_s,
                retry_every_s=self._redis_retry_every_s,
            )
        return store

    @property
    def degraded(self) -> bool:
        """True while some shared store falls back to per-pod buckets."""
        return any(s.degraded for s in self._redis.values())

    @property
    def fallbacks(self) -> int:
        """Checks served from per-pod buckets because Redis was unreachable (since start)."""
        return sum(s.fallbacks for s in self._redis.values())

    async def check(
        self, spec: RateLimits, key: str, cost: int, *, namespace: str = "default"
    ) -> ratelimit.Verdict:
        """Take one request costing `cost` tokens from the bucket pair `key` under `spec`."""
        limits = ratelimit.BucketLimits.of(spec)
        bucket = bucket_id(namespace, spec, key)
        now = self.clock()
        if spec.scope == "shared":
            return await self.shared(spec.redis_url).take(bucket, limits, cost, now)
        return self.pod.take(bucket, limits, cost, now)

    def peek(self, spec: RateLimits, key: str, *, namespace: str = "default") -> ratelimit.Verdict | None:
        """The enforced bucket pair `key`'s state, charging nothing (None for shared buckets: a
        Redis round trip is not worth an error's headers)."""
        if spec.scope == "shared":
            return None
        return self.pod.peek(bucket_id(namespace, spec, key), ratelimit.BucketLimits.of(spec), self.clock())

    def advertise(
        self, bucket: str, limits: ratelimit.BucketLimits, cost: int, *, charge: bool
    ) -> ratelimit.Verdict:
        """The default tier's verdict for the headers: charged (a served request) or only read (an
        error); an exhausted bucket reports 0 remaining and rejects nothing."""
        now = self.clock()
        if charge:
            return self.advertised.take(bucket, limits, cost, now)
        return self.advertised.peek(bucket, limits, now)

    async def close(self) -> None:
        for store in self._redis.values():
            await store.close()
        self._redis.clear()


def _redact(url: str) -> str:
    """A Redis URL without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
