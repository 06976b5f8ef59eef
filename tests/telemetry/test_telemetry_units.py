"""Pure pieces of telemetry: labels, reservoir/percentiles, session store, anomaly detector, facade."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from llmsim.profiles import parse_spec
from llmsim.simulation import sampling
from llmsim.telemetry import genai, labels, otel, stats
from llmsim.telemetry.anomaly import AnomalyDetector, Expectations
from llmsim.telemetry.events import EventBus
from llmsim.telemetry.facade import Telemetry
from llmsim.telemetry.records import RecordBuilder, RequestRecord
from llmsim.telemetry.sessions import SessionError, SessionStore
from llmsim.telemetry.settings import TelemetrySettings

SPEC = parse_spec(
    {
        "latency": {"ttftMs": {"type": "lognormal", "median": 200, "sigma": 0.3}},
        "faults": {"rates": {"server_error": 0.1}},
    },
    "test",
)


def record(**kw: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "provider": "openai",
        "operation": "chat",
        "model": "gpt-4o",
        "mode": "simulate",
        "outcome": "ok",
        "started_at": 1000.0,
        "e2e_s": 0.5,
        "ttft_s": 0.2,
        "token_times_s": (0.2, 0.3, 0.5),
        "input_tokens": 10,
        "output_tokens": 3,
    }
    base.update(kw)
    return RequestRecord(**base)


def samples(t: Telemetry, name: str, **match: str) -> float:
    body, _ = t.prometheus.render()
    out = 0.0
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in match.items()):
                out += s.value
    return out


# labels ----------------------------------------------------------------------------------------


def test_model_labeler_is_bounded() -> None:
    lab = labels.ModelLabeler(known=["gpt-4o"], limit=2)
    assert [lab(m) for m in ["gpt-4o", "a", "b", "c", "a", "", "x" * 200]] == [
        "gpt-4o",
        "a",
        "b",
        "other",
        "a",
        "other",
        "other",
    ]
    assert lab.distinct == 3
    lab.add_known(["c", "d", "e", "f"])  # at most `limit` names can be declared later
    assert [lab(m) for m in "cdef"] == ["c", "d", "other", "other"]


def test_known_models_come_from_the_profile() -> None:
    spec = parse_spec({"models": {"allow": ["gpt-*", "exact"], "aliases": {"x": "y"}, "listed": ["l1"]}}, "t")
    assert labels.known_models([spec]) == {"exact", "x", "y", "l1"}


def test_closed_label_sets() -> None:
    assert labels.provider_label("anthropic") == "anthropic" and labels.provider_label("evil") == "other"
    assert labels.mode_label("perturb") == "perturb" and labels.mode_label(None) == "other"
    assert labels.outcome_label("rate_limit") == "rate_limit" and labels.outcome_label("teapot") == "other"
    assert labels.fault_label("none") == "other"


# stats and sessions ----------------------------------------------------------------------------


def test_reservoir_keeps_everything_up_to_capacity_then_a_uniform_sample() -> None:
    r = stats.Reservoir(capacity=1000, seed=1)
    r.extend(float(i) for i in range(100_000))
    assert r.seen == 100_000 and len(r.values) == 1000
    # Uniform sample of 0..99999: its median is near 50000 (SE of a median of 1000 uniforms ~ 1600).
    assert abs(float(np.median(r.values)) - 50_000) < 6_400
    s = stats.summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.count, s.p50, s.max) == (4, 2.5, 4.0)
    assert stats.summarize([]).count == 0


def test_session_store_bounds_and_metrics() -> None:
    store = SessionStore(max_sessions=2, wall_clock=lambda: 123.0)
    a = store.create(session_id="a")
    store.create(session_id="b")
    with pytest.raises(SessionError, match="exists"):
        store.create(session_id="a")
    with pytest.raises(SessionError, match="id"):
        store.create(session_id="bad id")
    store.complete("a")
    store.create(session_id="c")  # evicts the completed one first
    assert store.ids() == ["b", "c"] and store.evicted == 1 and a.state == "completed"
    store.record("b", record(started_at=10.0, e2e_s=1.0), was_started=False)
    store.record("b", record(started_at=11.0, e2e_s=1.0, outcome="rate_limit", ttft_s=None, token_times_s=(), output_tokens=0, fault="rate_limit"), was_started=False)  # fmt: skip
    m = store.metrics("b")
    assert m is not None
    assert (m.requests, m.ok, m.errors, m.duration_s, m.rps, m.tps) == (2, 1, 1, 2.0, 1.0, 1.5)
    assert m.error_types["rate_limit"].rate == 0.5 and m.faults_injected == {"rate_limit": 1}
    assert m.ttft_s.count == 1 and m.itl_s.count == 2 and m.e2e_s.count == 2
    assert store.metrics("missing") is None and store.record("missing", record()) is None


# anomaly detection ------------------------------------------------------------------------------


def test_normal_traffic_raises_no_anomaly_and_slow_traffic_raises_one() -> None:
    det = AnomalyDetector(Expectations.of(SPEC))
    rng = np.random.default_rng(4)
    ttfts = sampling.sample(SPEC.latency.ttft_ms, rng, 2000) / 1000
    errors = rng.uniform(size=2000) < 0.1
    found = []
    for ttft, err in zip(ttfts, errors, strict=True):
        found += det.observe(
            record(ttft_s=float(ttft), outcome="server_error" if err else "ok", fault_reason="rate")
        )
    assert found == []
    p99 = sampling.quantile_of(SPEC.latency.ttft_ms, 0.99) / 1000
    slow = [a for _ in range(30) for a in det.observe(record(ttft_s=3 * p99))]
    assert [a.kind for a in slow] == ["latency"]  # once, not once per request
    assert slow[0].observed > slow[0].threshold == 0.1


def test_error_rate_anomaly_ignores_deliberate_faults_and_perturb_latency() -> None:
    det = AnomalyDetector(Expectations.of(SPEC))
    for _ in range(50):
        assert det.observe(record(outcome="server_error", fault="server_error", fault_reason="forced")) == []
        assert det.observe(record(mode="perturb", ttft_s=100.0)) == []
    hits = [a for _ in range(50) for a in det.observe(record(outcome="overloaded"))]
    assert [a.kind for a in hits] == ["error_rate"] and hits[0].expected == pytest.approx(0.1)


# facade ------------------------------------------------------------------------------------------


def test_the_builder_makes_the_one_record_the_pipeline_and_the_proxy_report() -> None:
    built = RecordBuilder("r1", "anthropic", "chat", started_at=1_000.0, mode="perturb")
    built.model, built.stream, built.session_id = "claude", True, "s1"
    for at in (0.1, 0.15, 0.2):
        built.token(at)
    built.input_tokens, built.output_tokens, built.finish_reasons = 7, 3, ["stop"]
    built.e2e_s, built.status, built.carrier = 0.25, 200, {"traceparent": "00-x"}
    rec = built.build()
    assert (rec.outcome, rec.ttft_s, rec.e2e_s, rec.mode, rec.request_id) == (
        "ok",
        0.1,
        0.25,
        "perturb",
        "r1",
    )
    assert rec.itl_s == pytest.approx((0.05, 0.05)) and rec.finish_reasons == ("stop",)
    assert rec.carrier == {"traceparent": "00-x"} and rec.ended_at == pytest.approx(1_000.25)
    t = Telemetry()
    t.create_session(session_id="s1")
    t.observe(rec)
    assert samples(t, "llmsim_itl_seconds_count", provider="anthropic", outcome="ok", mode="perturb") == 2
    assert samples(t, "llmsim_tokens_total", direction="input") == 7
    m = t.sessions.metrics("s1")
    assert m is not None and m.requests == 1 and m.active_requests == 0


@pytest.mark.parametrize(
    ("fault", "ending", "outcome"),
    [
        (None, None, "ok"),
        ("slow_stream", None, "ok"),
        ("disconnect", None, "disconnect"),
        ("timeout", None, "timeout"),
        ("rate_limit", "rate_limit", "rate_limit"),
        (None, "not_found", "not_found"),
        ("server_error", "", "server_error"),
        (None, "cancel", "cancelled"),
        (None, "internal", "internal_error"),
    ],
)
def test_the_outcome_names_what_the_client_got(fault: str | None, ending: str | None, outcome: str) -> None:
    built = RecordBuilder("r", "openai", "chat", started_at=0.0)
    built.fault = fault
    built.output_tokens, built.finish_reasons = 10, ["stop"]
    built.token(0.1)
    if ending == "cancel":
        built.cancel()
    elif ending == "internal":
        built.internal_error("boom")
    elif ending is not None:
        built.fail(ending or None, "the message")
    rec = built.build()
    assert rec.outcome == outcome
    # tokens the client never got are not counted; finish reasons only for complete answers
    assert rec.output_tokens == (10 if outcome == "ok" else 1)
    assert rec.finish_reasons == (("stop",) if outcome == "ok" else ())
    expected_message = {None: None, "cancel": None, "internal": "boom"}.get(ending, "the message")
    assert rec.error_message == expected_message


def test_a_failing_component_never_reaches_the_caller() -> None:
    t = Telemetry()

    def boom(*a: Any) -> None:
        raise RuntimeError("exporter down")

    t.instruments.record = boom  # type: ignore[method-assign]
    t.observe(record())
    assert samples(t, "llmsim_requests_total") == 1
    assert samples(t, "llmsim_telemetry_errors_total", component="otel_metrics") == 1


def test_a_records_trace_context_makes_its_span_a_child_of_the_caller() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    providers = otel.OtelProviders(provider.get_tracer("t"), otel_metrics.NoOpMeter("t"), provider)
    t = Telemetry(otel_providers=providers)
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    t.observe(record(carrier={"traceparent": incoming}))
    (span,) = exporter.get_finished_spans()
    assert (
        span.name == "chat gpt-4o" and span.parent is not None and span.parent.span_id == 0xB7AD6B7169203331
    )
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    provider.shutdown()


def test_anomalies_become_events() -> None:
    bus = EventBus()
    sent: list[tuple[str, dict[str, Any]]] = []
    bus.emit = lambda kind, data, subject=None: sent.append((kind, dict(data)))  # type: ignore[method-assign]
    t = Telemetry(events=bus, profile_lookup=lambda name: SPEC if name == "p" else None)
    for _ in range(25):
        t.observe(record(profile="p", ttft_s=30.0))
    kinds = [k for k, _ in sent]
    assert kinds.count("request.completed") == 25 and kinds.count("anomaly.detected") == 1
    anomaly = next(d for k, d in sent if k == "anomaly.detected")
    assert anomaly["kind"] == "latency" and anomaly["profile"] == "p"
    unknown = dataclasses.replace(record(profile="nope", outcome="server_error"))
    t.observe(unknown)
    assert sent[-1][0] == "error.occurred"


# settings -----------------------------------------------------------------------------------------


def test_settings_defaults_are_pinned_and_read_from_llmsim_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LLMSIM_"):
            monkeypatch.delenv(name)
    s = TelemetrySettings()
    assert s.model_dump() == {
        "model_label_limit": 50,
        "max_sessions": 200,
        "session_max_samples": 20_000,
        "events_sink_url": None,
        "events_queue_size": 1000,
        "events_max_attempts": 3,
        "events_timeout_s": 2.0,
        "events_backoff_s": 0.2,
        "events_concurrency": 2,
        "events_source": "/llmsim",
        "anomaly_window": 50,
    }
    assert all(field.description for field in TelemetrySettings.model_fields.values())
    monkeypatch.setenv("LLMSIM_EVENTS_QUEUE_SIZE", "7")
    monkeypatch.setenv("LLMSIM_MODEL_LABEL_LIMIT", "3")
    s = TelemetrySettings()
    assert s.events_queue_size == 7 and s.model_label_limit == 3
    monkeypatch.setenv("LLMSIM_EVENTS_QUEUE_SIZE", "0")
    with pytest.raises(ValueError, match="events_queue_size"):
        TelemetrySettings()


def test_genai_names_per_provider() -> None:
    assert genai.provider_name("azure") == "azure.ai.openai" and genai.provider_name("gemini") == "gcp.gemini"
    assert genai.operation_name("gemini", "chat") == "generate_content"
    assert genai.operation_name("openai", "completion") == "text_completion"
    assert genai.operation_name("ollama", "embeddings") == "embeddings"
    assert genai.span_name(record(operation="chat", model="")) == "chat"
    attrs = genai.span_attributes(record(outcome="disconnect", fault="disconnect", fault_reason="rate"))
    assert attrs["error.type"] == "disconnect" and attrs["llmsim.fault.type"] == "disconnect"


def test_observe_many_equals_observing_one_value_at_a_time() -> None:
    import numpy as np
    from prometheus_client import CollectorRegistry, Histogram

    from llmsim.telemetry.buckets import ITL_BUCKETS_S
    from llmsim.telemetry.prometheus import observe_many

    values = [
        *np.random.default_rng(3).lognormal(np.log(0.02), 1.0, 500).tolist(),
        0.0,
        1000000000.0,
        ITL_BUCKETS_S[3],
    ]
    one, many = (
        Histogram("h", "h", ["k"], buckets=ITL_BUCKETS_S, registry=CollectorRegistry()) for _ in range(2)
    )
    for v in values:
        one.labels("a").observe(v)
    observe_many(many.labels("a"), values)

    def samples(h: Histogram) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name, s.labels, round(s.value, 9))
            for m in h.collect()
            for s in m.samples
            if not s.name.endswith("_created")
        ]

    assert samples(one) == samples(many)
