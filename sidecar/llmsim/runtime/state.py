"""Process-wide state of a serving app (the simulator's, or the one inside the proxy): profiles,
when each became active, capacity gates, attempt counters, rate-limit buckets, request observers."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from llmsim.api.profile import SimulationProfileSpec
from llmsim.profiles import NamedProfile, ProfileRegistry
from llmsim.runtime.attempts import AttemptCounter
from llmsim.runtime.capacity_gate import CapacityGate
from llmsim.runtime.parse_worker import ParseWorker
from llmsim.runtime.ratelimit_store import RateLimiter
from llmsim.simulation.prompt_cache import PromptCache
from llmsim.telemetry.records import RequestRecord

log = logging.getLogger("llmsim.runtime")

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass
class RuntimeSettings:
    """Knobs of the HTTP shell (not part of a profile)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Requests with larger bodies get the provider's 413."""
    process_seed: int = field(default_factory=lambda: int.from_bytes(os.urandom(4), "little"))
    """Seed used when a profile sets none."""
    wall_clock: Callable[[], float] = time.time
    """Unix time: the clock of fault windows with `startAt` or `cron` (the same on every replica)."""


class FaultClock(Protocol):
    """Counts attempts and activations for several processes (see `server/peers.py`)."""

    async def fault_clock(self, name: str, key: str, now: float) -> tuple[float, int]: ...


class RuntimeState:
    """Everything a request needs that outlives it, shared by the simulator's pipeline and the
    proxy's data path (one instance per app)."""

    def __init__(self, registry: ProfileRegistry, settings: RuntimeSettings | None = None) -> None:
        self.registry = registry
        self.settings = settings or RuntimeSettings()
        self.activated_at: dict[str, float] = {}
        """Loop time each profile became active: its first request, or the first one after
        `reactivate` (relative fault windows count from it; absolute ones, with `startAt` or
        `cron`, read `wall_clock` and ignore it, so every replica agrees)."""
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
        self.parser = ParseWorker()
        """Where request bodies are parsed: inline, in a thread, or in a worker process by size."""
        self.coordinator: FaultClock | None = None
        """Where attempts and activations are counted when this app is one of several workers
        (`llmsim serve --workers N`); None: here."""

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

    def local_fault_clock(self, name: str, key: str, now: float) -> tuple[float, int]:
        """(seconds since profile `name` became active, earlier attempts of request `key`) in this
        process, counting this attempt."""
        start = self.activated_at.setdefault(name, now)
        return now - start, self.attempts.next(f"{name}|{key}")

    async def fault_clock(self, name: str, key: str, now: float, *, needed: bool = True) -> tuple[float, int]:
        """`local_fault_clock`, or the coordinator's across workers; `needed=False` (the profile's
        faults read neither) spares workers the round trip."""
        if self.coordinator is None:
            return self.local_fault_clock(name, key, now)
        if not needed:
            return 0.0, 0
        return await self.coordinator.fault_clock(name, key, now)

    def reactivate(self, name: str) -> None:
        """`name` becomes active anew with its next request (a reloaded or resumed profile)."""
        self.activated_at.pop(name, None)

    def wall_clock(self) -> float:
        """Unix time now (the settings' clock; tests inject one)."""
        return self.settings.wall_clock()

    def seed_for(self, spec: SimulationProfileSpec) -> int:
        return spec.seed if spec.seed is not None else self.settings.process_seed

    def report(self, record: RequestRecord) -> None:
        for callback in self.finished:
            try:
                callback(record)
            except Exception:
                log.exception("request observer failed")


STATE: web.AppKey[RuntimeState] = web.AppKey("llmsim_state", RuntimeState)
"""The app's RuntimeState."""
