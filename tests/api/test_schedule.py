"""Fault-window calendar: absolute windows agree across replicas, cron in a time zone across
daylight-saving changes, leap seconds ignored, and the checks that reject windows that never fire
or overlap."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llmsim import profiles
from llmsim.api import schedule
from llmsim.api.faults import FaultSpec, FaultWindow
from llmsim.errors import ProfileError


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def window(**fields: Any) -> FaultWindow:
    return FaultWindow.model_validate({"fault": "overloaded", "durationS": 300, **fields})


def test_an_absolute_window_is_open_between_start_at_and_its_duration() -> None:
    w = window(startAt="2026-03-02T14:00:00Z")
    assert not schedule.is_open(w, elapsed_s=0, now_unix=at("2026-03-02T13:59:59+00:00"))
    assert schedule.is_open(w, elapsed_s=0, now_unix=at("2026-03-02T14:00:00+00:00"))
    assert schedule.is_open(w, elapsed_s=0, now_unix=at("2026-03-02T14:04:59+00:00"))
    assert not schedule.is_open(w, elapsed_s=0, now_unix=at("2026-03-02T14:05:00+00:00"))


def test_an_absolute_window_ignores_how_long_the_process_has_run() -> None:
    """Two replicas (one up for an hour, one just restarted) see the same window at the same instant."""
    w = window(startAt="2026-03-02T14:00:00Z", everyS=3600)
    for now in (at("2026-03-02T14:02:00+00:00"), at("2026-03-02T17:04:00+00:00")):
        assert schedule.is_open(w, elapsed_s=3600.0, now_unix=now)
        assert schedule.is_open(w, elapsed_s=1.0, now_unix=now)
    assert not schedule.is_open(w, elapsed_s=100.0, now_unix=at("2026-03-02T14:06:00+00:00"))


def test_a_relative_window_still_counts_from_activation() -> None:
    w = window(startS=10, durationS=5)
    assert not schedule.is_open(w, elapsed_s=9.9, now_unix=at("2026-03-02T14:00:00+00:00"))
    assert schedule.is_open(w, elapsed_s=10.0, now_unix=0.0)
    assert not schedule.is_open(w, elapsed_s=15.0, now_unix=0.0)


@settings(max_examples=200, deadline=None)
@given(
    started=st.floats(min_value=0, max_value=10 * 86400),
    restarted=st.floats(min_value=0, max_value=10 * 86400),
    t=st.floats(min_value=0, max_value=30 * 86400),
    every=st.sampled_from([None, 600.0, 3600.0, 86400.0]),
)
def test_replicas_started_at_any_time_agree_and_a_restart_rejoins(
    started: float, restarted: float, t: float, every: float | None
) -> None:
    """The open occurrence at an instant depends on the instant only (never on activation)."""
    base = at("2026-03-02T00:00:00+00:00")
    w = window(startAt="2026-03-02T14:00:00Z", durationS=300, **({"everyS": every} if every else {}))
    now = base + t
    first = schedule.open_at(w, schedule.clock_of(w, elapsed_s=max(0, t - started), now_unix=now))
    second = schedule.open_at(w, schedule.clock_of(w, elapsed_s=max(0, t - restarted), now_unix=now))
    assert first == second
    if first is not None:  # a process that restarts inside the window rejoins the same occurrence
        assert first.contains(now)


def test_cron_in_a_time_zone_fires_at_local_wall_time_across_daylight_saving() -> None:
    """14:00 Europe/Berlin is 13:00Z in winter and 12:00Z in summer (clocks change 2026-03-29)."""
    w = window(cron="0 14 * * *", timeZone="Europe/Berlin")
    before = schedule.next_at(w, at("2026-03-28T00:00:00+00:00"))
    after = schedule.next_at(w, at("2026-03-29T00:00:00+00:00"))
    assert before == schedule.Occurrence(at("2026-03-28T13:00:00+00:00"), at("2026-03-28T13:05:00+00:00"))
    assert after == schedule.Occurrence(at("2026-03-29T12:00:00+00:00"), at("2026-03-29T12:05:00+00:00"))


def test_a_local_time_skipped_by_daylight_saving_fires_at_the_pre_change_offset() -> None:
    """02:30 does not exist in Berlin on 2026-03-29: it fires at 01:30Z (03:30 CEST), once."""
    w = window(cron="30 2 * * *", timeZone="Europe/Berlin", durationS=60)
    found = schedule.next_at(w, at("2026-03-29T00:00:00+00:00"))
    assert found is not None and found.start == at("2026-03-29T01:30:00+00:00")
    following = schedule.first_after(w, found.end)
    assert following is not None and following.start == at("2026-03-30T00:30:00+00:00")


def test_a_local_time_repeated_by_daylight_saving_fires_once() -> None:
    """02:30 happens twice in Berlin on 2026-10-25 (CEST then CET): the window opens at the first."""
    w = window(cron="30 2 * * *", timeZone="Europe/Berlin", durationS=60)
    found = schedule.next_at(w, at("2026-10-25T00:00:00+00:00"))
    assert found is not None and found.start == at("2026-10-25T00:30:00+00:00")
    following = schedule.first_after(w, found.end)
    assert following is not None and following.start == at("2026-10-26T01:30:00+00:00")


def test_leap_seconds_are_ignored_a_day_is_86400_seconds() -> None:
    """A leap second was inserted at 2016-12-31T23:59:60Z; daily windows stay at midnight."""
    w = window(startAt="2016-12-30T00:00:00Z", everyS=86400, durationS=60)
    found = schedule.first_after(w, at("2016-12-31T12:00:00+00:00"))
    assert found is not None and found.start == at("2017-01-01T00:00:00+00:00")
    cron_window = window(cron="0 0 * * *", durationS=60)
    found = schedule.first_after(cron_window, at("2016-12-31T12:00:00+00:00"))
    assert found is not None and found.start == at("2017-01-01T00:00:00+00:00")


def test_cron_with_start_at_fires_only_from_then_on() -> None:
    w = window(cron="0 14 * * mon-fri", startAt="2026-03-04T00:00:00Z")
    found = schedule.next_at(w, at("2026-03-01T00:00:00+00:00"))
    assert found is not None and found.start == at("2026-03-04T14:00:00+00:00")


def test_a_window_open_now_is_found_mid_window() -> None:
    w = window(cron="0 14 * * *", durationS=1800)
    found = schedule.open_at(w, at("2026-03-02T14:29:59+00:00"))
    assert found == schedule.Occurrence(at("2026-03-02T14:00:00+00:00"), at("2026-03-02T14:30:00+00:00"))
    assert schedule.open_at(w, at("2026-03-02T14:30:00+00:00")) is None


def test_the_operator_resolves_a_relative_window_from_the_resource_creation() -> None:
    created = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
    doc = schedule.absolute_from({"fault": "overloaded", "startS": 90, "durationS": 60}, created)
    assert doc == {"fault": "overloaded", "durationS": 60, "startAt": "2026-03-02T14:01:30Z"}
    absolute = {"fault": "overloaded", "cron": "0 * * * *", "durationS": 60}
    assert schedule.absolute_from(absolute, created) == absolute


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 0 30 feb *"}, "cron.*matches no date: the window never opens"),
        ({"cron": "61 * * * *"}, "cron.*minute: '61' is outside 0-59"),
        ({"cron": "*/5 * * * *", "durationS": 600}, "durationS .* shortest gap .*300 s"),
        ({"cron": "0 * * * *", "everyS": 3600}, "give cron or everyS, not both"),
        ({"cron": "0 * * * *", "startS": 5}, "startS does not apply to cron"),
        ({"startAt": "2026-03-02T14:00:00Z", "startS": 5}, "startS .* or startAt .*, not both"),
        ({"startAt": "2026-03-02T14:00:00"}, "startAt.*must carry a time zone"),
        ({"cron": "0 * * * *", "timeZone": "Mars/Olympus"}, "timeZone.*unknown time zone 'Mars/Olympus'"),
        ({"startAt": "2026-03-02T14:00:00Z", "timeZone": "Europe/Berlin"}, "timeZone applies to cron only"),
    ],
)
def test_windows_that_cannot_fire_or_make_no_sense_are_rejected_naming_the_field(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        profiles.parse_spec(
            {"faults": {"windows": [{"fault": "overloaded", "durationS": 300, **fields}]}}, "t"
        )
    assert any(p.startswith("faults.windows[0]") and re.search(message, p) for p in caught.value.problems), (
        caught.value.problems
    )


def test_a_window_after_the_profile_expiry_never_fires() -> None:
    with pytest.raises(
        ProfileError, match=r"faults.windows\[0\]: opens first at 2026-03-03T14:00:00Z.*never fires"
    ):
        profiles.parse_spec(
            {
                "until": "2026-03-03T12:00:00Z",
                "faults": {
                    "windows": [{"fault": "overloaded", "durationS": 60, "startAt": "2026-03-03T14:00:00Z"}]
                },
            },
            "t",
        )
    with pytest.raises(ProfileError, match=r"faults.windows\[0\].startS: 700 s is not before durationS"):
        profiles.parse_spec(
            {
                "durationS": 600,
                "faults": {"windows": [{"fault": "overloaded", "durationS": 60, "startS": 700}]},
            },
            "t",
        )


def test_overlapping_windows_of_one_fault_are_rejected_of_different_faults_tried_in_order() -> None:
    daily = {"cron": "0 14 * * *", "durationS": 3600}
    with pytest.raises(ValidationError, match=r"windows\[1\] overlaps windows\[0\], both overloaded"):
        FaultSpec.model_validate(
            {
                "windows": [
                    {"fault": "overloaded", **daily},
                    {"fault": "overloaded", "cron": "30 14 * * mon", "durationS": 60},
                ]
            }
        )
    with pytest.raises(
        ValidationError,
        match=r"windows\[2\] overlaps windows\[0\].*\(e.g. both open at 2026-03-02T14:02:00Z\)",
    ):
        FaultSpec.model_validate(
            {
                "windows": [
                    {"fault": "timeout", "startAt": "2026-03-02T14:00:00Z", "durationS": 300},
                    {"fault": "overloaded", "startAt": "2026-03-02T14:02:00Z", "durationS": 300},
                    {"fault": "timeout", "startAt": "2026-03-02T14:02:00Z", "everyS": 3600, "durationS": 300},
                ]
            }
        )
    with pytest.raises(
        ValidationError, match=r"windows\[1\] overlaps windows\[0\].*\(e.g. both open 15 s after activation\)"
    ):
        FaultSpec.model_validate(
            {
                "windows": [
                    {"fault": "timeout", "startS": 10, "durationS": 10},
                    {"fault": "timeout", "startS": 15, "durationS": 10},
                ]
            }
        )
    mixed = FaultSpec.model_validate(
        {"windows": [{"fault": "overloaded", "probability": 0.5, **daily}, {"fault": "timeout", **daily}]}
    )
    disjoint = FaultSpec.model_validate(
        {
            "windows": [
                {"fault": "overloaded", **daily},
                {"fault": "overloaded", "cron": "0 16 * * *", "durationS": 3600},
            ]
        }
    )
    clocks = FaultSpec.model_validate(  # wall clock and activation clock cannot be compared in advance
        {"windows": [{"fault": "overloaded", **daily}, {"fault": "overloaded", "durationS": 60}]}
    )
    assert len(mixed.windows) == len(disjoint.windows) == len(clocks.windows) == 2


@settings(max_examples=50, deadline=None)
@given(steps=st.lists(st.floats(min_value=-600, max_value=600), min_size=1, max_size=60))
def test_the_remembered_answer_is_the_computed_one_at_every_instant(steps: list[float]) -> None:
    """`is_open` remembers its answer until it can change; wherever the clock goes (also back),
    it says what `open_at` computes."""
    w = window(cron="*/3 * * * *", durationS=45, timeZone="Europe/Berlin")
    t = at("2026-03-29T00:50:00+00:00")  # across the change to summer time
    for step in steps:
        t += step
        assert schedule.is_open(w, elapsed_s=0, now_unix=t) is (schedule.open_at(w, t) is not None)
