"""When fault windows are open: the calendar arithmetic, pure (standard library only).

A window runs on one of two clocks:

* **absolute** (`startAt` and/or `cron`): Unix seconds. Every replica that reads the same profile
  computes the same occurrences from the wall clock alone, whenever it started or restarted, so a
  fleet sees one outage at 14:00 and a restarted pod rejoins a window already open.
* **relative** (neither): seconds since the profile became active in the serving process
  (`llmsim serve`, a local `llmsim proxy`). The operator turns these into absolute ones, counted
  from the resource's creation, before a sidecar reads them (`absolute_from`).

Occurrences are half-open intervals `[start, end)`. Leap seconds do not exist here (Unix time has
none): a day is 86,400 s. Cron firings follow `api/cron.py` (time zones, daylight-saving rules).

The models validate with this module (`api/faults.py`), the fault engine and the gauges evaluate
it, and the operator shows the next window in the status.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmsim.api import cron

if TYPE_CHECKING:
    from llmsim.api.faults import FaultWindow

OVERLAP_HORIZON_S = 366 * 86400.0
"""How far ahead `overlap` compares two windows' occurrences (a year)."""
OVERLAP_MAX_OCCURRENCES = 4096
"""... or this many occurrences of each, whichever ends first."""


@dataclass(frozen=True, order=True)
class Occurrence:
    """One opening of a window: `[start, end)` in seconds on the window's clock."""

    start: float
    end: float

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


def is_absolute(window: FaultWindow) -> bool:
    """Whether the window runs on the wall clock (`startAt` or `cron`) rather than from activation."""
    return window.start_at is not None or window.cron is not None


@functools.lru_cache(maxsize=256)
def _cron(expression: str) -> cron.Cron:
    return cron.parse(expression)


@functools.lru_cache(maxsize=64)
def zone(name: str | None) -> dt.tzinfo:
    """The IANA time zone `name` (UTC when None); ValueError naming it when unknown."""
    if name is None or name.upper() == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)") from None


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _anchor(window: FaultWindow) -> float:
    """Where the first occurrence starts on the window's clock (cron windows: where firings may begin)."""
    if window.start_at is not None:
        return window.start_at.timestamp()
    return window.start_s


def _cron_after(window: FaultWindow, t: float) -> Iterator[Occurrence]:
    """Cron occurrences whose firing is strictly after `t` (and not before `startAt`)."""
    assert window.cron is not None
    floor = window.start_at.timestamp() if window.start_at is not None else None
    after = t if floor is None else max(t, floor - 1e-6)
    for firing in _cron(window.cron).firings(_utc(after), zone(window.time_zone)):
        start = firing.timestamp()
        yield Occurrence(start, start + window.duration_s)


def occurrences(window: FaultWindow, since: float) -> Iterator[Occurrence]:
    """The window's occurrences that end after `since`, ascending (infinite when it repeats)."""
    if window.cron is not None:
        yield from _cron_after(window, since - window.duration_s)
        return
    anchor = _anchor(window)
    if window.every_s is None:
        if anchor + window.duration_s > since:
            yield Occurrence(anchor, anchor + window.duration_s)
        return
    k = max(0, int((since - anchor - window.duration_s) // window.every_s))
    while True:
        start = anchor + k * window.every_s
        if start + window.duration_s > since:
            yield Occurrence(start, start + window.duration_s)
        k += 1


def open_at(window: FaultWindow, t: float) -> Occurrence | None:
    """The occurrence open at `t` (seconds on the window's clock), or None."""
    for occurrence in occurrences(window, t):
        return occurrence if occurrence.contains(t) else None
    return None


def next_at(window: FaultWindow, t: float) -> Occurrence | None:
    """The occurrence open at `t`, else the next one to open; None when the window never opens again."""
    return next(occurrences(window, t), None)


def clock_of(window: FaultWindow, *, elapsed_s: float, now_unix: float) -> float:
    """The reading of the window's clock: `now_unix` for absolute windows, `elapsed_s` otherwise."""
    return now_unix if is_absolute(window) else elapsed_s


def is_open(window: FaultWindow, *, elapsed_s: float, now_unix: float) -> bool:
    """Whether `window` is open now (`elapsed_s` since activation, `now_unix` on the wall clock).

    Wall-clock windows are asked on every request: the answer is remembered until the instant it
    can change (the open occurrence's end, or the next one's start), so a cron window costs one
    calendar walk per opening and closing, not one per request."""
    t = clock_of(window, elapsed_s=elapsed_s, now_unix=now_unix)
    if not is_absolute(window):
        return open_at(window, t) is not None  # plain arithmetic
    known = _STEADY.get(window)
    if known is not None and known[0] <= t < known[1]:
        return known[2]
    found = open_at(window, t)
    if found is not None:
        steady = (t, found.end, True)
    else:
        upcoming = first_after(window, t)
        steady = (t, upcoming.start if upcoming is not None else float("inf"), False)
    if len(_STEADY) >= _STEADY_MAX:
        _STEADY.clear()
    _STEADY[window] = steady
    return steady[2]


_STEADY: dict[FaultWindow, tuple[float, float, bool]] = {}
"""window -> (from, until, open): the answer of `is_open` that holds for t in [from, until)."""
_STEADY_MAX = 256


def first_after(window: FaultWindow, t: float) -> Occurrence | None:
    """The first occurrence that opens at or after `t` (None: never again)."""
    for occurrence in occurrences(window, t):
        if occurrence.start >= t:
            return occurrence
    return None


def overlap(a: FaultWindow, b: FaultWindow, since: float) -> tuple[Occurrence, Occurrence] | None:
    """The first pair of occurrences of `a` and `b` that are open at once, looking from `since` over
    `OVERLAP_HORIZON_S` (or `OVERLAP_MAX_OCCURRENCES` each); None when none is found. Both must run
    on the same clock."""
    horizon = since + OVERLAP_HORIZON_S
    first = _bounded(occurrences(a, since), horizon)
    second = _bounded(occurrences(b, since), horizon)
    x, y = next(first, None), next(second, None)
    while x is not None and y is not None:
        if x.start < y.end and y.start < x.end:
            return x, y
        if x.end <= y.end:
            x = next(first, None)
        else:
            y = next(second, None)
    return None


def _bounded(items: Iterator[Occurrence], horizon: float) -> Iterator[Occurrence]:
    for i, occurrence in enumerate(items):
        if occurrence.start > horizon or i >= OVERLAP_MAX_OCCURRENCES:
            return
        yield occurrence


def absolute_from(window_doc: dict[str, object], created: dt.datetime) -> dict[str, object]:
    """A relative window (a camelCase document) made absolute from `created`: `startAt` = creation
    + `startS` (what the operator renders for its sidecars). Absolute windows are returned as they are."""
    if window_doc.get("startAt") is not None or window_doc.get("cron") is not None:
        return dict(window_doc)
    out = dict(window_doc)
    start_s = out.pop("startS", 0) or 0
    assert isinstance(start_s, int | float)
    start = created.astimezone(dt.UTC) + dt.timedelta(seconds=float(start_s))
    out["startAt"] = start.isoformat().replace("+00:00", "Z")
    return out
