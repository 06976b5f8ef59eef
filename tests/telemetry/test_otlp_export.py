"""Real OTLP/HTTP export: a receiver on 127.0.0.1 decodes the protobuf payloads (opentelemetry-proto)."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest
from aiohttp import web
from helpers import receiver
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmsim.profiles import ProfileRegistry
from llmsim.server.app import create_app
from llmsim.telemetry import otel
from simserver import FAST, SimServer, profile_from

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
USER = [{"role": "user", "content": "hello"}]
FORCE_RATE_LIMIT = {"x-llmsim-fault": "rate_limit"}


class Collector:
    """Keeps the raw OTLP request bodies by signal."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = {"traces": [], "metrics": []}
        self.content_types: set[str] = set()
        self.lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        signal = request.path.rsplit("/", 1)[-1]
        body = await request.read()
        with self.lock:
            self.bodies.setdefault(signal, []).append(body)
            self.content_types.add(request.headers.get("Content-Type", ""))
        return web.Response(status=200, body=b"", content_type="application/x-protobuf")

    def spans(self) -> tuple[list[Span], list[dict[str, Any]]]:
        spans: list[Span] = []
        resources: list[dict[str, Any]] = []
        for body in self.bodies["traces"]:
            msg = ExportTraceServiceRequest()
            msg.ParseFromString(body)
            for rs in msg.resource_spans:
                resources.append({kv.key: value(kv.value) for kv in rs.resource.attributes})
                for ss in rs.scope_spans:
                    spans.extend(ss.spans)
        return spans, resources

    def metrics(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for body in self.bodies["metrics"]:
            msg = ExportMetricsServiceRequest()
            msg.ParseFromString(body)
            for rm in msg.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        found[metric.name] = metric
        return found


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def point_attrs(point: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in point.attributes}


def attrs(span: Span) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in span.attributes}


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Any:
    c = Collector()
    server = receiver(c.handle)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "llmsim-under-test")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_METRICS_EXPORTER", raising=False)
    yield c
    server.stop()


def run_requests(server: SimServer) -> None:
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
    parent = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}
    stream = c.chat.completions.create(model="gpt-4o", messages=USER, stream=True, extra_headers=parent)
    assert sum(1 for _ in stream) > 0
    c.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(
            model="gpt-4o", messages=USER, extra_headers={"x-llmsim-fault": "rate_limit"}
        )


def test_spans_follow_genai_conventions_and_continue_the_callers_trace(collector: Collector) -> None:
    server = SimServer(create_app(ProfileRegistry(profile_from(FAST)))).start()
    run_requests(server)
    server.stop()  # app cleanup shuts the providers down, which flushes the batch processors

    assert collector.content_types == {"application/x-protobuf"}
    spans, resources = collector.spans()
    assert len(spans) == 3
    assert all(r.get("service.name") == "llmsim-under-test" for r in resources)
    assert {s.name for s in spans} == {"chat gpt-4o"}
    assert all(s.kind == Span.SpanKind.SPAN_KIND_SERVER for s in spans)

    continued = [s for s in spans if s.trace_id.hex() == TRACE_ID]
    assert len(continued) == 1
    span = continued[0]
    assert span.parent_span_id.hex() == PARENT_SPAN
    a = attrs(span)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.response.model"] == "gpt-4o"
    assert a["gen_ai.usage.output_tokens"] == 12
    assert a["gen_ai.usage.input_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["llmsim.mode"] == "simulate"
    assert [e.name for e in span.events] == ["gen_ai.first_token"]
    first = span.events[0].time_unix_nano
    assert span.start_time_unix_nano < first <= span.end_time_unix_nano
    ttft = {kv.key: value(kv.value) for kv in span.events[0].attributes}["llmsim.ttft_s"]
    assert first - span.start_time_unix_nano == pytest.approx(ttft * 1e9, abs=1000)

    others = [s for s in spans if s is not span]
    assert all(s.trace_id.hex() != TRACE_ID and not s.parent_span_id for s in others)
    faulted = [s for s in others if attrs(s).get("llmsim.fault.type")]
    assert len(faulted) == 1
    fa = attrs(faulted[0])
    assert fa["llmsim.fault.type"] == "rate_limit" and fa["llmsim.fault.reason"] == "forced"
    assert fa["error.type"] == "rate_limit"
    assert fa["http.response.status_code"] == 429
    assert faulted[0].status.code == Status.StatusCode.STATUS_CODE_ERROR
    assert not faulted[0].events  # no token was sent

    metrics = collector.metrics()
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.server.time_to_first_token",
        "gen_ai.server.time_per_output_token",
    } <= set(metrics)
    duration = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s"
    assert sum(p.count for p in duration.histogram.data_points) == 3
    ttft_points = metrics["gen_ai.server.time_to_first_token"].histogram.data_points
    assert sum(p.count for p in ttft_points) == 2
    usage = metrics["gen_ai.client.token.usage"].histogram.data_points
    outputs = [
        p for p in usage if {kv.key: value(kv.value) for kv in p.attributes}["gen_ai.token.type"] == "output"
    ]
    assert sum(p.sum for p in outputs) == 24


def test_sdk_disabled_exports_nothing(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    server = SimServer(create_app(ProfileRegistry(profile_from(FAST)))).start()
    run_requests(server)
    server.stop()
    assert collector.bodies == {"traces": [], "metrics": []}


def test_exporter_choice_follows_the_standard_variables() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert otel.exporter_choice("traces", {}) is None  # no endpoint: nothing is exported
    assert otel.exporter_choice("traces", endpoint) == "otlp"
    assert otel.exporter_choice("traces", {**endpoint, "OTEL_SDK_DISABLED": "TRUE"}) is None
    assert otel.exporter_choice("traces", {**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert otel.exporter_choice("metrics", {**endpoint, "OTEL_TRACES_EXPORTER": "none"}) == "otlp"
    assert otel.exporter_choice("metrics", {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://x"}) == "otlp"
    assert otel.exporter_choice("traces", {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://x"}) is None
    assert otel.exporter_choice("traces", {"OTEL_TRACES_EXPORTER": "console"}) == "console"
    assert otel.otlp_protocol("traces", {}) == "http/protobuf"
    assert otel.otlp_protocol("traces", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"


def test_without_an_endpoint_spans_are_not_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    providers = otel.from_env()
    assert not providers.recording and providers.meter_provider is None
    providers.shutdown()
