"""Process-wide state of a serving app: profiles, capacity gates, counters, observers."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmsim.api.profile import SimulationProfileSpec
from llmsim.profiles import NamedProfile, ProfileRegistry
from llmsim.server.attempts import AttemptCounter
from llmsim.server.capacity_gate import CapacityGate
from llmsim.server.ratelimit_store import RateLimiter
from llmsim.server.records import RequestRecord
from llmsim.simulation.prompt_cache import PromptCache

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass
class ServerSettings:
    """Knobs of the HTTP shell (not part of a profile)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Requests with larger bodies get the provider's 413."""
    process_seed: int = field(default_factory=lambda: int.from_bytes(os.urandom(4), "little"))
    """Seed used when a profile sets none."""


class ServerState:
    """Everything the request pipeline needs that outlives one request."""

    def __init__(self, registry: ProfileRegistry, settings: ServerSettings | None = None) -> None:
        self.registry = registry
        self.settings = settings or ServerSettings()
        self.started_monotonic = time.monotonic()
        self.activated_at: dict[str, float] = {}
        """Monotonic time each profile became active (fault windows and expiry count from it)."""
        self._gates: dict[tuple[str, int], CapacityGate] = {}
        self._counter = itertools.count()
        self.finished: list[Callable[[RequestRecord], None]] = []
        """Called with every finished request's record (telemetry, sessions, events)."""
        self.ready = True
        self.in_flight = 0
        """Provider requests being served right now (the GC policy collects only when this is 0)."""
        self.attempts = AttemptCounter()
        """Attempts per request key (fail-first, per-attempt fault decisions)."""
        self.rate_limiter = RateLimiter()
        """Rate-limit buckets (per pod, or shared in Redis); closed on app cleanup."""
        self._prompt_caches: dict[str, PromptCache] = {}

    def next_request_number(self) -> int:
        return next(self._counter)

    def gate(self, profile: NamedProfile) -> CapacityGate:
        """One capacity gate per profile (recreated when the profile's capacity changes)."""
        key = (profile.name, id(profile.spec.latency.capacity))
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = CapacityGate(profile.spec.latency.capacity)
        return gate

    def prompt_cache(self, profile: NamedProfile) -> PromptCache:
        """One prompt cache per profile (see `simulation/prompt_cache.py`)."""
        cache = self._prompt_caches.get(profile.name)
        if cache is None or cache.max_entries != profile.spec.prompt_caching.max_entries:
            cache = self._prompt_caches[profile.name] = PromptCache(profile.spec.prompt_caching.max_entries)
        return cache

    def elapsed_s(self, profile: NamedProfile, now: float) -> float:
        """Seconds since `profile` became active in this process."""
        start = self.activated_at.setdefault(profile.name, now)
        return now - start

    def seed_for(self, spec: SimulationProfileSpec) -> int:
        return spec.seed if spec.seed is not None else self.settings.process_seed

    def report(self, record: RequestRecord) -> None:
        for callback in self.finished:
            try:
                callback(record)
            except Exception:
                import logging

                logging.getLogger("llmsim.server").exception("request observer failed")
