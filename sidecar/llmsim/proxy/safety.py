"""The gate in front of every intercepted request: which mode really applies. Pure.

Live traffic is simulated or perturbed only inside the limits the profile sets: the fail-safe
(the watched profile was deleted or cannot be read, see `profile_watch.py`), the kill switch
(`paused`, admin `POST /pause`), the expiry (`durationS` from activation, `until`), the match
rules and the seeded `percentage`. Everything outside them passes through untouched.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass

from llmsim.api.profile import MatchRule, Mode, SimulationProfileSpec
from llmsim.proxy.facts import RequestInfo, stable_fraction


@dataclass(frozen=True)
class Decision:
    """The mode that applies to one request and why (`profile`, `header`, `failsafe`, `paused`,
    `expired`, `unmatched`, `percentage`)."""

    mode: Mode
    reason: str


def expired(spec: SimulationProfileSpec, activated_at: dt.datetime, now: dt.datetime) -> bool:
    """True once `durationS` has passed since activation or `until` is reached."""
    if spec.until is not None and now >= spec.until:
        return True
    return spec.duration_s is not None and (now - activated_at).total_seconds() >= spec.duration_s


def rule_matches(rule: MatchRule, info: RequestInfo) -> bool:
    """All given fields of the rule match (globs for host, path and model)."""
    if rule.hosts and not any(
        fnmatch.fnmatchcase(info.host, h.lower())
        or fnmatch.fnmatchcase(f"{info.host}:{info.port}", h.lower())
        for h in rule.hosts
    ):
        return False
    if rule.paths and not any(fnmatch.fnmatchcase(info.path, p) for p in rule.paths):
        return False
    if rule.models and (
        info.model is None or not any(fnmatch.fnmatchcase(info.model, m) for m in rule.models)
    ):
        return False
    return rule.stream is None or rule.stream == info.stream


def decide(
    spec: SimulationProfileSpec,
    info: RequestInfo,
    *,
    requested: Mode | None,
    paused: bool,
    activated_at: dt.datetime,
    now: dt.datetime,
    fallback_key: str,
    default_mode: Mode | None = None,
    failsafe: bool = False,
) -> Decision:
    """The mode for this request. `fallback_key` stands in for a missing request id (random per
    request); `default_mode` (the `--mode` flag) replaces the profile's mode; `failsafe`: the
    watched profile is gone or unreadable (nothing is touched, whatever the headers say)."""
    mode = requested or default_mode or spec.mode
    reason = "header" if requested else "profile"
    if mode is Mode.PASSTHROUGH:
        return Decision(mode, reason)
    if failsafe:
        return Decision(Mode.PASSTHROUGH, "failsafe")
    if paused or spec.paused:
        return Decision(Mode.PASSTHROUGH, "paused")
    if expired(spec, activated_at, now):
        return Decision(Mode.PASSTHROUGH, "expired")
    if spec.match and not any(rule_matches(rule, info) for rule in spec.match):
        return Decision(Mode.PASSTHROUGH, "unmatched")
    if spec.percentage < 100:
        key = info.request_id or fallback_key
        if stable_fraction(spec.seed or 0, key) * 100 >= spec.percentage:
            return Decision(Mode.PASSTHROUGH, "percentage")
    return Decision(mode, reason)
