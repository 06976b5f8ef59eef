"""Merging the workers' parts of a session gives the metrics one process would have measured."""

from __future__ import annotations

from llmsim.server import peers
from llmsim.telemetry.records import RequestRecord
from llmsim.telemetry.sessions import SessionStore


def record(i: int, outcome: str = "ok") -> RequestRecord:
    return RequestRecord(provider="openai", operation="chat", model="m", mode="simulate", outcome=outcome,
                         started_at=100.0 + i, e2e_s=0.5 + i / 100, ttft_s=0.1 + i / 1000,
                         token_times_s=(0.1 + i / 1000, 0.12 + i / 1000, 0.15 + i / 1000),
                         input_tokens=3, output_tokens=3 if outcome == "ok" else 0,
                         fault=None if outcome == "ok" else "server_error")  # fmt: skip


def test_two_workers_parts_merge_into_the_single_process_metrics() -> None:
    single, first, second = SessionStore(), SessionStore(), SessionStore()
    for store in (single, first, second):
        store.create(None, None, {"run": "x"}, "s")
        store.get("s").created_at = 1.0  # type: ignore[union-attr]
    for i in range(30):
        rec = record(i, "ok" if i % 7 else "server_error")
        single.record("s", rec, was_started=False)
        (first if i % 3 else second).record("s", rec, was_started=False)
    parts = [peers.session_part(store.get("s")) for store in (first, second)]  # type: ignore[arg-type]
    merged = peers.merge(parts).metrics()
    expected = single.metrics("s")
    assert expected is not None
    assert merged.model_dump(exclude={"ttft_s", "itl_s", "e2e_s"}) == expected.model_dump(
        exclude={"ttft_s", "itl_s", "e2e_s"}
    )
    for name in ("ttft_s", "itl_s", "e2e_s"):  # the same samples, pooled in another order
        got, want = getattr(merged, name), getattr(expected, name)
        assert (
            got.count == want.count and abs(got.p99 - want.p99) < 1e-12 and abs(got.mean - want.mean) < 1e-12
        )


def test_a_completed_part_completes_the_merged_session() -> None:
    a, b = SessionStore(), SessionStore()
    for store in (a, b):
        store.create(None, None, {}, "s")
    a.complete("s")
    merged = peers.merge([peers.session_part(a.get("s")), peers.session_part(b.get("s"))])  # type: ignore[arg-type]
    assert merged.state == "completed"
