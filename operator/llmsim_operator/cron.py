"""Five-field cron expressions (UTC), pure: `minute hour day-of-month month day-of-week`.

Supports `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month and weekday
names (`jan`, `mon`), and Vixie cron's rule that a restricted day-of-month and a restricted
day-of-week match when either does.
"""

from __future__ import annotations

import datetime as dt
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

    def next_after(self, after: dt.datetime, horizon_days: int = 5 * 366) -> dt.datetime | None:
        """The first firing time strictly after `after` (UTC), or None within the horizon."""
        after = after.astimezone(dt.UTC)
        start = after.replace(second=0, microsecond=0)
        for offset in range(horizon_days + 1):
            day = start.date() + dt.timedelta(days=offset)
            if not self.matches_day(day):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    when = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
                    if when > after:
                        return when
        return None

    def latest_due(self, since: dt.datetime, now: dt.datetime) -> dt.datetime | None:
        """The latest firing time in (since, now], or None (missed runs are not replayed one by one)."""
        due = None
        cursor = self.next_after(since)
        while cursor is not None and cursor <= now:
            due = cursor
            cursor = self.next_after(cursor)
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
