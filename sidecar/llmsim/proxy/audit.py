"""The proxy's audit trail: every change of what applies to live traffic, with who or what caused it.

Each action (`paused`, `resumed`, `reset`, `failsafe`, `recovered`, `installed`, `expired`,
`window_opened`, `window_closed`) from a source (`admin-api`, `profile`, `kill-switch`, `watch`,
`file`, `schedule`) is

* counted in `llmsim_control_actions_total{action,source}`,
* a `control.action` event (a JSON log line, and a CloudEvent with a sink configured),
* and, for what only this sidecar knows (its admin API, its fail-safe), a Kubernetes Event on its
  SimulationProfile when it watches one (`kube_event`; the operator posts the Events of what the
  profile says: paused flips, the kill switch, windows, expiry, once per profile, not once per pod).

`ScheduleObserver` notices windows opening and closing and the expiry passing (they happen by the
clock, not by a call).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from llmsim.api import schedule
from llmsim.proxy import safety
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.state import ProxyState
from llmsim.telemetry.events import EventBus

log = logging.getLogger("llmsim.proxy")

KubeEventPoster = Callable[[str, str, str], None]
"""(type `Normal`/`Warning`, reason, message) -> a Kubernetes Event on the profile (fire and forget)."""

LOCAL_ACTIONS = {
    ("paused", "admin-api"): ("Warning", "SidecarPaused"),
    ("reset", "admin-api"): ("Warning", "SidecarReset"),
    ("resumed", "admin-api"): ("Normal", "SidecarResumed"),
    ("failsafe", "watch"): ("Warning", "SidecarFailSafe"),
    ("recovered", "watch"): ("Normal", "SidecarRecovered"),
}
"""The actions only the sidecar knows of, and their Kubernetes Event (type, reason)."""


@dataclass(frozen=True)
class Action:
    action: str
    source: str
    who: str | None = None
    detail: str = ""


class ControlAudit:
    """Counts, emits and (where it applies) posts each control action."""

    def __init__(
        self, state: ProxyState, metrics: ProxyMetrics, events: EventBus | None = None,
        kube_event: KubeEventPoster | None = None, pod: str | None = None,
    ) -> None:  # fmt: skip
        self.state = state
        self.metrics = metrics
        self.events = events
        self.kube_event = kube_event
        self.pod = pod or os.environ.get("LLMSIM_POD_NAME")
        self.recorded: list[Action] = []

    def record(self, action: str, source: str, who: str | None = None, detail: str = "") -> None:
        entry = Action(action, source, who, detail)
        self.recorded.append(entry)
        del self.recorded[:-1000]
        self.metrics.control_actions.labels(action, source).inc()
        data = {
            "action": action, "source": source, "who": who, "detail": detail,
            "profile": self.state.profile.name, "generation": self.state.generation, "pod": self.pod,
        }  # fmt: skip
        log.info("control action %s (source %s, by %s): %s", action, source, who or "unknown", detail)
        if self.events is not None:
            self.events.emit("control.action", data, subject=self.state.profile.name)
        kind = LOCAL_ACTIONS.get((action, source))
        if kind is not None and self.kube_event is not None:
            by = f" by {who}" if who else ""
            where = f" on pod {self.pod}" if self.pod else ""
            try:
                self.kube_event(
                    kind[0], kind[1], f"{action}{where} via {source}{by}" + (f": {detail}" if detail else "")
                )
            except Exception:
                log.exception("kubernetes event for %s failed", action)


class ScheduleObserver:
    """Records windows opening and closing and the expiry passing, looked at every `tick`."""

    def __init__(self, state: ProxyState, audit: ControlAudit, now_unix: Callable[[], float]) -> None:
        self.state = state
        self.audit = audit
        self.now_unix = now_unix
        self._open: set[int] | None = None
        self._expired: bool | None = None
        self._generation = -1

    def tick(self, elapsed_s: float) -> None:
        """`elapsed_s`: seconds since the profile became active (relative windows)."""
        spec = self.state.profile.spec
        if self.state.generation != self._generation:  # another profile: start over, silently
            self._generation, self._open, self._expired = self.state.generation, None, None
        now = self.now_unix()
        is_open = {
            i
            for i, w in enumerate(spec.faults.windows)
            if schedule.is_open(w, elapsed_s=elapsed_s, now_unix=now)
        }
        expired = safety.expired(spec, self.state.activated_at, self.state.clock())
        if self._open is not None:
            for i in sorted(is_open - self._open):
                self.audit.record(
                    "window_opened", "schedule", detail=f"window {i} ({spec.faults.windows[i].fault.value})"
                )
            for i in sorted(self._open - is_open):
                if i < len(spec.faults.windows):
                    self.audit.record(
                        "window_closed",
                        "schedule",
                        detail=f"window {i} ({spec.faults.windows[i].fault.value})",
                    )
        if self._expired is False and expired:
            self.audit.record(
                "expired", "schedule", detail="until/durationS reached: everything passes through"
            )
        self._open, self._expired = is_open, expired
