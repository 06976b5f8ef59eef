"""The one object the serving side talks to: `Telemetry`.

A finished request is reported once, with `telemetry.observe(record)` (a `RequestRecord`, built
by the simulator's pipeline or the proxy's data path with a `RecordBuilder`). It lands in
Prometheus, OpenTelemetry (span + GenAI metrics), its session, the anomaly detector and the event
stream. Nothing here raises into the caller: a failure in telemetry is logged at debug level and
counted in `llmsim_telemetry_errors_total`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmsim.api.profile import SimulationProfileSpec
from llmsim.profiles import ProfileRegistry
from llmsim.telemetry import genai, labels, otel, otel_logs, shutdown
from llmsim.telemetry.anomaly import Anomaly, AnomalyDetector, Expectations
from llmsim.telemetry.events import CloudEventSink, EventBus
from llmsim.telemetry.prometheus import PromMetrics, observe_many
from llmsim.telemetry.records import RequestRecord
from llmsim.telemetry.sessions import Session, SessionMetrics, SessionStore
from llmsim.telemetry.settings import TelemetrySettings

log = logging.getLogger(__name__)

TRACE_HEADERS = ("traceparent", "tracestate", "baggage")
ProfileLookup = Callable[[str], SimulationProfileSpec | None]


def trace_carrier(headers: Mapping[str, str]) -> dict[str, str]:
    """The trace-context headers of a request (keys lower-cased); nothing else is kept."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        low = key.lower()
        if low in TRACE_HEADERS:
            out[low] = value
    return out


class Telemetry:
    """Metrics, traces, sessions and events of one serving app (or proxy, or load generator)."""

    def __init__(
        self,
        *,
        settings: TelemetrySettings | None = None,
        prometheus: PromMetrics | None = None,
        otel_providers: otel.OtelProviders | None = None,
        events: EventBus | None = None,
        sessions: SessionStore | None = None,
        models: labels.ModelLabeler | None = None,
        profile_lookup: ProfileLookup | None = None,
        request_logs: otel_logs.RequestLogs | None = None,
    ) -> None:
        self.settings = settings or TelemetrySettings()
        self.prometheus = prometheus or PromMetrics()
        self.otel = otel_providers or otel.OtelProviders(trace.NoOpTracer(), metrics.NoOpMeter("llmsim"))
        self.instruments = genai.GenAiInstruments(self.otel.meter)
        self.events = events or EventBus(self.settings.events_source)
        self.sessions = sessions or SessionStore(
            self.settings.max_sessions, self.settings.session_max_samples
        )
        self.models = models or labels.ModelLabeler(limit=self.settings.model_label_limit)
        self.profile_lookup = profile_lookup
        self.request_logs = request_logs or otel_logs.RequestLogs()
        self._detectors: dict[str, AnomalyDetector] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls,
        known_models: Iterable[str] = (),
        profile_lookup: ProfileLookup | None = None,
        service_name: str = otel.DEFAULT_SERVICE_NAME,
        settings: TelemetrySettings | None = None,
    ) -> Telemetry:
        """Telemetry configured by `LLMSIM_*` (ours) and `OTEL_*` (OpenTelemetry) variables."""
        settings = settings or TelemetrySettings()
        prometheus = PromMetrics()
        sink = None
        if settings.events_sink_url:
            sink = CloudEventSink(
                settings.events_sink_url,
                queue_size=settings.events_queue_size,
                max_attempts=settings.events_max_attempts,
                timeout_s=settings.events_timeout_s,
                backoff_s=settings.events_backoff_s,
                concurrency=settings.events_concurrency,
                on_drop=lambda reason: prometheus.events_dropped.labels(reason).inc(),
                on_sent=prometheus.events_sent.inc,
            )
        return cls(
            settings=settings,
            prometheus=prometheus,
            otel_providers=otel.from_env(service_name),
            request_logs=otel_logs.RequestLogs.from_env(service_name),
            events=EventBus(settings.events_source, sink),
            models=labels.ModelLabeler(known_models, settings.model_label_limit),
            profile_lookup=profile_lookup,
        )

    @classmethod
    def for_registry(
        cls, registry: ProfileRegistry, service_name: str = otel.DEFAULT_SERVICE_NAME
    ) -> Telemetry:
        """Telemetry from the environment that knows the registry's model names and profiles."""
        specs = [registry.get(name).spec for name in registry.names()]

        def lookup(name: str) -> SimulationProfileSpec | None:
            try:
                return registry.get(name).spec
            except KeyError:
                return None

        return cls.from_env(
            known_models=labels.known_models(specs), profile_lookup=lookup, service_name=service_name
        )

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start background delivery (the events sink); call inside the running event loop."""
        await self.events.start()

    async def aclose(self) -> None:
        """Complete open sessions, drain events, flush and shut down the OTel exporters."""
        for sid in self.sessions.active_ids():
            self.complete_session(sid)
        await self.events.aclose()
        # flushing exporters blocks (for as long as a silent collector lets it): bounded, off the loop
        await shutdown.shutdown_within(
            [("traces and metrics", self.otel.shutdown), ("request logs", self.request_logs.shutdown)]
        )

    # requests ------------------------------------------------------------------------------

    def observe(self, rec: RequestRecord, spec: SimulationProfileSpec | None = None) -> None:
        """Report a finished request (metrics, span, session, anomalies, events). Never raises."""
        model = self._guard("labels", lambda: self.models(rec.model), labels.OTHER)
        self._guard("prometheus", lambda: self._prometheus(rec, model), None)
        self._guard("otel_metrics", lambda: self.instruments.record(rec, model), None)
        span_context = self._guard("tracing", lambda: self._span(rec), None)
        trace_id = f"{span_context.trace_id:032x}" if span_context is not None else None
        self._guard("logs", lambda: self.request_logs.emit(rec, span_context), None)
        session = self._guard("sessions", lambda: self._session(rec), None)
        anomalies = self._guard("anomaly", lambda: self._anomalies(rec, spec, session), [])
        self._guard("events", lambda: self._events(rec, trace_id, anomalies), None)

    def _guard(self, component: str, fn: Callable[[], Any], default: Any) -> Any:
        try:
            return fn()
        except Exception:
            log.debug("telemetry component %s failed", component, exc_info=True)
            try:
                self.prometheus.telemetry_errors.labels(component).inc()
            except Exception:
                pass
            return default

    def _prometheus(self, rec: RequestRecord, model: str) -> None:
        p = self.prometheus
        provider, mode = labels.provider_label(rec.provider), labels.mode_label(rec.mode)
        outcome = labels.outcome_label(rec.outcome)
        series = p.request_series(provider, model, mode, outcome)
        series.requests.inc()
        series.e2e.observe(rec.e2e_s)
        if rec.ttft_s is not None:
            series.ttft.observe(rec.ttft_s)
        itl = rec.itl_s
        if itl:
            observe_many(series.itl, itl)
        if rec.input_tokens:
            series.input_tokens.inc(rec.input_tokens)
        if rec.output_tokens:
            series.output_tokens.inc(rec.output_tokens)
        if rec.fault:
            p.faults.labels(provider, model, mode, labels.fault_label(rec.fault)).inc()

    def _span(self, rec: RequestRecord) -> trace.SpanContext | None:
        """Record the request's span; its context (else the caller's, when not recording) or None."""
        parent = propagate.extract(rec.carrier) if rec.carrier else None
        if not self.otel.recording:
            ctx = trace.get_current_span(parent).get_span_context() if parent is not None else None
            return ctx if ctx is not None and ctx.is_valid else None
        start_ns = int(rec.started_at * 1e9)
        span = self.otel.tracer.start_span(
            genai.span_name(rec), context=parent, kind=SpanKind.SERVER, start_time=start_ns
        )
        span.set_attributes(genai.span_attributes(rec))
        if rec.ttft_s is not None:
            span.add_event(
                genai.FIRST_TOKEN_EVENT, {genai.TTFT: rec.ttft_s}, timestamp=start_ns + int(rec.ttft_s * 1e9)
            )
        if not rec.ok and rec.outcome != labels.CANCELLED:
            span.set_status(Status(StatusCode.ERROR, rec.error_message or rec.outcome))
        span.end(end_time=start_ns + int(rec.e2e_s * 1e9))
        ctx = span.get_span_context()
        return ctx if ctx.is_valid else None

    def _session(self, rec: RequestRecord) -> Session | None:
        if not rec.session_id:
            return None
        return self.sessions.record(rec.session_id, rec, was_started=False)

    def _anomalies(
        self, rec: RequestRecord, spec: SimulationProfileSpec | None, session: Session | None
    ) -> list[Anomaly]:
        if session is not None:
            key = f"session:{session.id}"
            spec = session.spec or spec
        else:
            key = f"profile:{rec.profile or ''}"
        if spec is None and rec.profile and self.profile_lookup is not None:
            spec = self.profile_lookup(rec.profile)
        if spec is None:
            return []
        with self._lock:
            detector = self._detectors.get(key)
            if detector is None:
                if len(self._detectors) >= 4 * self.settings.max_sessions:
                    self._detectors.clear()
                window = self.settings.anomaly_window
                detector = AnomalyDetector(Expectations.of(spec), window=window, min_requests=min(20, window))
                self._detectors[key] = detector
            return detector.observe(rec)

    def _events(self, rec: RequestRecord, trace_id: str | None, anomalies: list[Anomaly]) -> None:
        data = request_event_data(rec, trace_id)
        self.events.emit("request.completed", data, subject=rec.request_id)
        if rec.outcome not in (labels.OK, labels.CANCELLED):
            err = {
                **data,
                "errorType": rec.outcome,
                "message": rec.error_message,
                "injected": rec.fault is not None,
            }
            self.events.emit("error.occurred", err, subject=rec.request_id)
        for anomaly in anomalies:
            self.events.emit(
                "anomaly.detected",
                {
                    "kind": anomaly.kind,
                    "observed": anomaly.observed,
                    "expected": anomaly.expected,
                    "threshold": anomaly.threshold,
                    "window": anomaly.window,
                    "sessionId": rec.session_id,
                    "profile": rec.profile,
                    "provider": rec.provider,
                    "model": rec.model,
                    **anomaly.detail,
                },
                subject=rec.session_id or rec.profile,
            )

    # sessions ------------------------------------------------------------------------------

    def create_session(
        self,
        profile_name: str | None = None,
        spec: SimulationProfileSpec | None = None,
        labels_: Mapping[str, str] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session (SessionError for a bad or duplicate id) and emit `session.started`."""
        session = self.sessions.create(profile_name, spec, dict(labels_ or {}), session_id)
        if spec is not None:
            self._guard("labels", lambda: self.models.add_known(labels.known_models([spec])), None)
        self.events.emit(
            "session.started",
            {"sessionId": session.id, "profile": profile_name, "labels": session.labels},
            subject=session.id,
        )
        return session

    def complete_session(self, session_id: str) -> SessionMetrics | None:
        """Mark a session completed and emit `session.completed` with its final metrics."""
        session = self.sessions.get(session_id)
        if session is None:
            return None
        was_active = session.completed_at is None
        metrics = self.sessions.complete(session_id)
        if metrics is not None and was_active:
            self.events.emit("session.completed", metrics.model_dump(mode="json"), subject=session_id)
        with self._lock:
            self._detectors.pop(f"session:{session_id}", None)
        return metrics


def request_event_data(rec: RequestRecord, trace_id: str | None) -> dict[str, Any]:
    """The `data` of a `request.completed` event (camelCase keys, seconds)."""
    return {
        "requestId": rec.request_id,
        "provider": rec.provider,
        "operation": rec.operation,
        "model": rec.model,
        "responseModel": rec.response_model,
        "mode": rec.mode,
        "outcome": rec.outcome,
        "status": rec.status,
        "stream": rec.stream,
        "ttftS": rec.ttft_s,
        "e2eS": rec.e2e_s,
        "inputTokens": rec.input_tokens,
        "outputTokens": rec.output_tokens,
        "fault": rec.fault,
        "faultReason": rec.fault_reason,
        "sessionId": rec.session_id,
        "profile": rec.profile,
        "traceId": trace_id,
    }
