"""Five-field cron expressions, pure: `minute hour day-of-month month day-of-week`.

Supports `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month and weekday
names (`jan`, `mon`), and Vixie cron's rule that a restricted day-of-month and a restricted
day-of-week match when either does.

Firing times are wall-clock times in a time zone (UTC unless one is given). Across daylight-saving
changes (PEP 495 semantics, as `zoneinfo` gives them):

* a local time that does not exist (skipped when clocks go forward) fires at the instant the
  pre-change offset gives it: `02:30` on a day Europe/Berlin jumps from 02:00 to 03:00 fires at
  03:30 CEST (the same instant as 02:30 CET). Two expressions' times that fall on one instant fire once.
* a local time that happens twice (clocks go back) fires once, at its first occurrence.

Unix time has no leap seconds, and neither has this arithmetic: every minute is 60 s.

One home for cron: LoadScenario schedules (operator) and fault windows (`api/schedule.py`) use it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)

HORIZON_DAYS = 5 * 366
"""How far ahead a firing is looked for (covers 29 February); an expression with no firing within
it never fires (e.g. `0 0 30 feb *`)."""


class CronError(ValueError):
    """An unparsable cron expression; the message names the field."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def _times_of_day(self) -> list[tuple[int, int]]:
        return [(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]

    def _days(self, first: dt.date, horizon_days: int) -> Iterator[dt.date]:
        """Matching days from `first`, skipping whole months that cannot match."""
        day, last = first, first + dt.timedelta(days=horizon_days)
        while day <= last:
            if day.month not in self.months:
                year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
                day = dt.date(year, month, 1)
                continue
            if self.matches_day(day):
                yield day
            day += dt.timedelta(days=1)

    def firings(
        self, after: dt.datetime, tz: dt.tzinfo = dt.UTC, horizon_days: int = HORIZON_DAYS
    ) -> Iterator[dt.datetime]:
        """Firing instants strictly after `after` (aware), ascending and distinct, as UTC datetimes."""
        after = after.astimezone(dt.UTC)
        local_start = after.astimezone(tz).date() - dt.timedelta(days=1)  # a shifted firing of the day before
        times = self._times_of_day()
        pending: list[dt.datetime] = []
        last: dt.datetime | None = None
        for day in self._days(local_start, horizon_days + 1):
            # every instant of this local day is at or after its midnight's (fold=0) instant, so
            # whatever is pending before that is final
            boundary = dt.datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(dt.UTC)
            pending.sort()
            while pending and pending[0] < boundary:
                when = pending.pop(0)
                if when > after and when != last:
                    last = when
                    yield when
            for hour, minute in times:
                local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                pending.append(local.astimezone(dt.UTC))
        for when in sorted(pending):
            if when > after and when != last:
                last = when
                yield when

    def next_after(
        self, after: dt.datetime, tz: dt.tzinfo = dt.UTC, horizon_days: int = HORIZON_DAYS
    ) -> dt.datetime | None:
        """The first firing time strictly after `after` (as UTC), or None within the horizon."""
        return next(self.firings(after, tz, horizon_days), None)

    def latest_due(self, since: dt.datetime, now: dt.datetime) -> dt.datetime | None:
        """The latest firing time in (since, now] (UTC), or None (missed runs are not replayed one by one)."""
        due = None
        for cursor in self.firings(since):
            if cursor > now:
                break
            due = cursor
        return due


def _value(text: str, names: dict[str, int], field: str) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a number")
    return int(text)


def _field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _value(a, names, field), _value(b, names, field)
        else:
            first = _value(body, names, field)
            last = high if step_text else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise CronError(f"{field}: {part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def parse(expression: str) -> Cron:
    """Parse `expression`; CronError names the offending field."""
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}")
    sets = [_field(p, name, lo, hi, names) for p, (name, lo, hi, names) in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*")
