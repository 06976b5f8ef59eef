import datetime as dt

import pytest

from llmsim.api.timestamps import parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-06T14:00:00Z", dt.datetime(2026, 12, 6, 14, tzinfo=dt.UTC)),
        ("2026-12-06T15:00:00+01:00", dt.datetime(2026, 12, 6, 14, tzinfo=dt.UTC)),
        ("2026-12-06T14:00:00", dt.datetime(2026, 12, 6, 14, tzinfo=dt.UTC)),
    ],
)
def test_kubernetes_timestamps_become_aware_datetimes(value: str, expected: dt.datetime) -> None:
    parsed = parse_time(value)
    assert parsed == expected and parsed is not None and parsed.tzinfo is not None


@pytest.mark.parametrize("value", [None, "", "yesterday", 0])
def test_a_missing_or_malformed_timestamp_is_none(value: object) -> None:
    assert parse_time(value) is None
