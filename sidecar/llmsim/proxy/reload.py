"""Hot reload: poll the profile file and install a changed, valid profile for new requests.

Polling (not inotify) because ConfigMap volumes swap a symlink (`..data`), which many watchers miss.
An invalid file is logged with its field paths and the old profile stays active.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from llmsim import profiles
from llmsim.errors import ProfileError
from llmsim.proxy.audit import ControlAudit
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.state import ProxyState

log = logging.getLogger("llmsim.proxy")

POLL_INTERVAL_S = 0.5
"""How often the file is checked (a change applies within this plus parse time, well under 2 s)."""


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ProfileWatcher:
    """Reloads `path` into `state` when its content changes."""

    def __init__(
        self,
        path: Path,
        state: ProxyState,
        metrics: ProxyMetrics,
        interval_s: float = POLL_INTERVAL_S,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        audit: ControlAudit | None = None,
    ) -> None:
        self.path = path
        self.state = state
        self.metrics = metrics
        self.interval_s = interval_s
        self.sleep = sleep
        """How the poll loop waits (injectable: tests run it on fake time)."""
        self._seen = _digest(path)
        self.audit = audit

    def check(self) -> bool:
        """Reload if the content changed; True when a new profile was installed."""
        digest = _digest(self.path)
        if digest is None or digest == self._seen:
            return False
        self._seen = digest
        if self.state.api_authoritative:
            log.info(
                "profile file %s changed; the watched resource is authoritative, not installed", self.path
            )
            return False
        try:
            profile = profiles.load_file(self.path)
        except ProfileError as exc:
            self.metrics.reloads.labels("invalid").inc()
            log.error(
                "profile %s rejected, keeping %r: %s",
                self.path,
                self.state.profile.name,
                "; ".join(exc.problems),
            )
            return False
        before = self.state.profile.spec
        try:
            self.state.install(profile)
        except ValueError as exc:
            self.metrics.reloads.labels("invalid").inc()
            log.error("profile %s rejected, keeping %r: %s", self.path, self.state.profile.name, exc)
            return False
        self.metrics.reloads.labels("ok").inc()
        if self.audit is not None:
            self.audit.record("installed", "file", None, str(self.path))
            if profile.spec.paused != before.paused:
                self.audit.record(
                    "paused" if profile.spec.paused else "resumed", "file", None, str(self.path)
                )
        return True

    async def run(self) -> None:
        while True:
            await self.sleep(self.interval_s)
            try:
                self.check()
            except Exception:
                log.exception("profile reload failed")
