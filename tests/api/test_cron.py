"""Cron expressions of scheduled LoadScenarios."""

from __future__ import annotations

import datetime as dt

import pytest

from llmsim.api import cron


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 2 * * *", "2026-11-26T21:00", "2026-11-27T02:00"),
        ("0 2 * * *", "2026-11-27T02:00", "2026-11-28T02:00"),  # strictly after
        ("*/15 9-17 * * mon-fri", "2026-11-28T21:00", "2026-11-30T09:00"),  # Saturday -> Monday
        ("30 12 1 jan *", "2026-06-01T00:00", "2027-01-01T12:30"),
        ("0 0 13 * 5", "2026-11-26T00:00", "2026-11-27T00:00"),  # Vixie: the 13th OR a Friday
        ("0 0 * * 7", "2026-11-26T00:00", "2026-11-29T00:00"),  # 7 is Sunday too
        ("5,10 * * * *", "2026-11-26T10:07", "2026-11-26T10:10"),
    ],
)
def test_next_firing_time(expression: str, after: str, expected: str) -> None:
    assert cron.parse(expression).next_after(at(after)) == at(expected)


def test_latest_due_skips_missed_runs_instead_of_replaying_them() -> None:
    schedule = cron.parse("0 * * * *")
    assert schedule.latest_due(at("2026-11-26T08:30"), at("2026-11-26T11:15")) == at("2026-11-26T11:00")
    assert schedule.latest_due(at("2026-11-26T11:00"), at("2026-11-26T11:59")) is None


def test_an_impossible_date_never_fires() -> None:
    assert cron.parse("0 0 30 feb *").next_after(at("2026-01-01T00:00")) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("61 * * * *", "minute: '61' is outside 0-59"),
        ("* 24 * * *", "hour"),
        ("* * * * funday", "day of week: 'funday' is not a number"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "outside"),
    ],
)
def test_bad_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(cron.CronError, match=message):
        cron.parse(expression)
