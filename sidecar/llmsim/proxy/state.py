"""The proxy's mutable state: the active profile, when it became active, the kill switch."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from llmsim.api.profile import Mode
from llmsim.profiles import NamedProfile, ProfileRegistry
from llmsim.proxy.scope import Scope

log = logging.getLogger("llmsim.proxy")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ProxyState:
    """Shared by the data path, the admin server and the reload watcher (one event loop)."""

    def __init__(
        self,
        profile: NamedProfile,
        *,
        extra_hosts: tuple[str, ...] = (),
        mode_override: Mode | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.clock = clock
        self.extra_hosts = extra_hosts
        self.mode_override = mode_override
        """`--mode`: replaces the profile's `mode` (the header still wins per request)."""
        self.registry = ProfileRegistry(profile)
        self.paused = False
        self.generation = 0
        self.activated_at = clock()
        self.scope = Scope.build([*extra_hosts, *profile.spec.intercept_hosts])
        self.ready = False
        self.failsafe: str | None = None
        """Why everything passes through regardless of the profile (`deleted`, `unreadable`: the
        watched profile, see `profile_watch.py`); None normally."""
        self.api_authoritative = False
        """True while the profile comes from the Kubernetes API (the watched resource): the file
        watcher then leaves the mounted copy alone (it lags behind)."""
        self.on_activate: list[Callable[[str], None]] = []
        """Called with a profile's name when it becomes active anew (installed, resumed): the
        runtime restarts the clock its fault windows count from."""

    def _activated(self) -> None:
        self.activated_at = self.clock()
        for callback in self.on_activate:
            callback(self.profile.name)

    @property
    def profile(self) -> NamedProfile:
        return self.registry.default

    def install(self, profile: NamedProfile) -> None:
        """Make `profile` the active one for new requests (in-flight ones keep theirs)."""
        scope = Scope.build([*self.extra_hosts, *profile.spec.intercept_hosts])
        self.registry.replace(profile, make_default=True)
        self.scope = scope
        self.generation += 1
        self._activated()
        log.info(
            "profile %r active (generation %d, source %s)", profile.name, self.generation, profile.source
        )

    def fail_safe(self, reason: str | None) -> bool:
        """Enter (`reason`) or leave (None) the fail-safe; True when that changed anything."""
        if reason == self.failsafe:
            return False
        previous, self.failsafe = self.failsafe, reason
        if reason is None:
            log.warning("fail-safe over (was: %s): the profile applies again", previous)
        else:
            log.warning("fail-safe (%s): every request passes through untouched", reason)
        return True

    def pause(self) -> None:
        self.paused = True
        log.warning("paused: every request passes through untouched until POST /resume")

    def resume(self) -> None:
        self.paused = False
        self._activated()
        log.warning("resumed: the profile applies again (activation clock restarted)")

    def reset(self) -> None:
        """The kill switch: pass everything through until /resume (or a new profile is loaded)."""
        self.paused = True
        log.warning("reset: every request passes through untouched until POST /resume or a new profile")
