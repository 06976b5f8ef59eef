"""OTLP request logs: a real OTLP/HTTP receiver on 127.0.0.1 decodes the protobuf log payloads."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from helpers import receiver
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from test_otlp_export import PARENT_SPAN, TRACE_ID, USER, Collector, value

from llmsim.profiles import ProfileRegistry
from llmsim.server.app import create_app
from llmsim.telemetry import otel_logs
from llmsim.telemetry.records import RequestRecord
from simserver import FAST, SimServer, profile_from

SECRET = "sk-live-0123456789abcdef"


def logs(c: Collector) -> tuple[list[LogRecord], list[dict[str, Any]]]:
    records: list[LogRecord] = []
    resources: list[dict[str, Any]] = []
    for raw in c.bodies.get("logs", []):
        msg = ExportLogsServiceRequest()
        msg.ParseFromString(raw)
        for rl in msg.resource_logs:
            resources.append({kv.key: value(kv.value) for kv in rl.resource.attributes})
            for sl in rl.scope_logs:
                records.extend(sl.log_records)
    return records, resources


def attrs(rec: LogRecord) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in rec.attributes}


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Any:
    c = Collector()
    server = receiver(c.handle)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "llmsim-logs-test")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    yield c
    server.stop()


def send(server: SimServer) -> None:
    c = openai.OpenAI(base_url=server.url + "/v1", api_key=SECRET, max_retries=0)
    parent = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}
    assert sum(
        1 for _ in c.chat.completions.create(model="gpt-4o", messages=USER, stream=True, extra_headers=parent)
    )
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers={"x-llmsim-fault": "rate_limit"}
        )


def test_one_log_record_per_request_correlated_with_its_span(collector: Collector) -> None:
    server = SimServer(create_app(ProfileRegistry(profile_from(FAST)))).start()
    send(server)
    server.stop()  # app cleanup flushes the batch processors

    records, resources = logs(collector)
    assert len(records) == 2 and all(r.get("service.name") == "llmsim-logs-test" for r in resources)
    spans, _ = collector.spans()
    span_ids = {(s.trace_id.hex(), s.span_id.hex()) for s in spans}
    assert {(r.trace_id.hex(), r.span_id.hex()) for r in records} == span_ids  # each log names its span
    ok = next(r for r in records if r.trace_id.hex() == TRACE_ID)
    a = attrs(ok)
    assert ok.event_name == otel_logs.EVENT_NAME and ok.severity_number == SeverityNumber.SEVERITY_NUMBER_INFO
    assert a["gen_ai.request.model"] == "gpt-4o" and a["gen_ai.usage.output_tokens"] == 12
    assert a["llmsim.e2e_s"] > 0 and a["llmsim.ttft_s"] > 0 and a["llmsim.outcome"] == "ok"
    assert value(ok.body).startswith("chat gpt-4o -> 200 ok in ")
    limited = next(r for r in records if r is not ok)
    assert limited.severity_text == "WARN" and attrs(limited)["llmsim.fault.type"] == "rate_limit"
    assert "429 rate_limit (fault: forced)" in value(limited.body)
    assert all(SECRET.encode() not in raw for raw in collector.bodies["logs"])  # the key never leaves


def test_without_traces_the_log_carries_the_callers_trace_context(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    server = SimServer(create_app(ProfileRegistry(profile_from(FAST)))).start()
    send(server)
    server.stop()
    records, _ = logs(collector)
    assert len(records) == 2 and collector.bodies["traces"] == []
    continued = [r for r in records if r.trace_id.hex() == TRACE_ID]
    assert len(continued) == 1 and continued[0].span_id.hex() == PARENT_SPAN
    assert next(r for r in records if r is not continued[0]).trace_id == b""  # no context: none invented


def test_logs_exporter_none_and_sdk_disabled_export_nothing(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    assert not otel_logs.RequestLogs.from_env().exporting
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not otel_logs.RequestLogs.from_env().exporting
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert not otel_logs.RequestLogs.from_env().exporting  # no endpoint: nothing to export to
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:9/v1/logs")
    exporting = otel_logs.RequestLogs.from_env()
    assert exporting.exporting
    exporting.shutdown()


def test_free_text_is_scrubbed_of_credentials() -> None:
    rec = RequestRecord(
        provider="openai", operation="chat", model="gpt-4o", mode="perturb", outcome="server_error",
        started_at=1.0, e2e_s=0.5, status=502,
        error_message=f"upstream said: Authorization: Bearer {SECRET}; see https://x.test/v1?key=AIzaSECRET",
    )  # fmt: skip
    a = otel_logs.attributes(rec)
    text = " ".join(str(v) for v in a.values()) + otel_logs.body(rec)
    assert SECRET not in text and "AIzaSECRET" not in text and "<redacted>" in a["llmsim.error.message"]
    assert otel_logs.severity(rec)[1] == "ERROR"
