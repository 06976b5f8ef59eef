"""Log-bucket histograms: quantiles within the relative accuracy, exact merges, round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmsim.loadgen.histogram import LogHistogram


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q * len(ordered))))
    return ordered[rank - 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0.01, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_quantiles_are_within_the_relative_accuracy(values: list[float], q: float) -> None:
    hist = LogHistogram()
    hist.record_many(values)
    got = hist.quantile(q)
    want = exact_quantile(values, q)
    assert got is not None
    assert abs(got - want) <= hist.accuracy * want * 1.0000001


def test_merging_equals_recording_everything_in_one() -> None:
    rng = np.random.default_rng(5)
    parts = [rng.lognormal(5, 1, 1000) for _ in range(4)]
    whole = LogHistogram()
    for part in parts:
        whole.record_many(part)
    merged = LogHistogram()
    for part in parts:
        piece = LogHistogram()
        piece.record_many(part)
        merged.merge(piece)
    assert merged.counts == whole.counts
    assert (merged.count, merged.min, merged.max) == (whole.count, whole.min, whole.max)
    assert merged.total == pytest.approx(whole.total)


def test_round_trip_through_json_form() -> None:
    hist = LogHistogram()
    hist.record_many([0.0, 0.0005, 1.5, 20.0, 20.1, 3000.0])
    back = LogHistogram.from_dict(hist.to_dict())
    assert back.counts == hist.counts and back.count == 6 and back.min == 0.0 and back.max == 3000.0
    assert back.quantile(0.5) == hist.quantile(0.5)


def test_empty_histogram_reports_nothing() -> None:
    hist = LogHistogram()
    assert hist.quantile(0.5) is None
    assert hist.summary()["p99"] is None and hist.summary()["count"] == 0
    assert LogHistogram.from_dict(hist.to_dict()).count == 0


def test_malformed_input_is_rejected_with_a_reason() -> None:
    doc = LogHistogram().to_dict() | {"count": 3}
    with pytest.raises(ValueError, match="do not add up"):
        LogHistogram.from_dict(doc)
    with pytest.raises(ValueError, match="malformed"):
        LogHistogram.from_dict({"accuracy": 0.01})
    with pytest.raises(ValueError, match="cannot merge"):
        LogHistogram(accuracy=0.01).merge(LogHistogram(accuracy=0.02))


def test_quantiles_are_clamped_to_the_observed_range() -> None:
    hist = LogHistogram()
    hist.record_many([250.0] * 10)
    assert hist.quantile(0.5) == 250.0 and hist.quantile(0.99) == 250.0
