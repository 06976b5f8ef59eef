"""Request logs over OpenTelemetry: one structured log record per finished request.

Configured by the standard variables like traces and metrics (see `otel.py`): `OTEL_LOGS_EXPORTER`
(`otlp` by default, `console` or `none`), an endpoint in `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` or
`OTEL_EXPORTER_OTLP_ENDPOINT` (without one nothing is exported), `OTEL_SDK_DISABLED`; the SDK reads
headers, timeouts, `OTEL_BLRP_*` batching and the resource variables itself.

Each record carries the request's trace and span ids (its own span when traces are recorded, else
the caller's `traceparent`), the GenAI attributes of its span, its timings and outcome, and never a
credential: free text is scrubbed by `llmsim.redact`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext
from opentelemetry.util.types import AttributeValue

from llmsim import __version__
from llmsim.redact import redact_text
from llmsim.telemetry import genai, labels, otel
from llmsim.telemetry.records import RequestRecord

log = logging.getLogger(__name__)

EVENT_NAME = "llmsim.request"
"""The `event_name` of every request log record."""


def _exporter(choice: str, env: Mapping[str, str]) -> LogRecordExporter | None:
    if choice == "console":
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

        return ConsoleLogRecordExporter()
    protocol = otel.otlp_protocol("logs", env)
    if protocol not in ("http/protobuf", "http"):
        log.warning(
            "OTLP protocol %r for logs is not supported (use http/protobuf); logs are not exported", protocol
        )
        return None
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter()


def severity(rec: RequestRecord) -> tuple[SeverityNumber, str]:
    """INFO for a served request, WARN for an answered error or injected fault below 500, ERROR for
    5xx answers and internal failures."""
    if rec.ok or rec.outcome == labels.CANCELLED:
        return SeverityNumber.INFO, "INFO"
    if (rec.status or 0) >= 500 or rec.outcome == labels.INTERNAL_ERROR:
        return SeverityNumber.ERROR, "ERROR"
    return SeverityNumber.WARN, "WARN"


def body(rec: RequestRecord) -> str:
    """A one-line human summary, e.g. `chat gpt-4o -> 429 rate_limit (fault: forced) in 12.3 ms`."""
    status = "" if rec.status is None else f"{rec.status} "
    fault = f" (fault: {rec.fault_reason or 'injected'})" if rec.fault else ""
    return redact_text(f"{genai.span_name(rec)} -> {status}{rec.outcome}{fault} in {rec.e2e_s * 1000:.1f} ms")


def attributes(rec: RequestRecord) -> dict[str, AttributeValue]:
    """The span's GenAI attributes plus the request's timings and (redacted) error message."""
    attrs = dict(genai.span_attributes(rec))
    attrs["llmsim.e2e_s"] = rec.e2e_s
    if rec.ttft_s is not None:
        attrs[genai.TTFT] = rec.ttft_s
    if rec.request_id:
        attrs["llmsim.request.id"] = rec.request_id
    if rec.error_message:
        attrs["llmsim.error.message"] = redact_text(rec.error_message)
    return {k: redact_text(v) if isinstance(v, str) else v for k, v in attrs.items()}


class RequestLogs:
    """Emits request log records through an SDK LoggerProvider (a no-op without one)."""

    def __init__(self, provider: LoggerProvider | None = None) -> None:
        self.provider = provider
        self._logger = (
            None if provider is None else provider.get_logger(otel.INSTRUMENTATION_NAME, __version__)
        )

    @property
    def exporting(self) -> bool:
        return self._logger is not None

    @classmethod
    def from_env(
        cls, service_name: str = otel.DEFAULT_SERVICE_NAME, env: Mapping[str, str] | None = None
    ) -> RequestLogs:
        env = os.environ if env is None else env
        choice = otel.exporter_choice("logs", env)
        exporter = _exporter(choice, env) if choice else None
        if exporter is None:
            return cls()
        provider = LoggerProvider(resource=otel.resource(service_name), shutdown_on_exit=False)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        return cls(provider)

    def emit(self, rec: RequestRecord, span_context: SpanContext | None) -> None:
        """One record for a finished request, correlated with `span_context` when it is valid."""
        if self._logger is None:
            return
        context: Context | None = None
        if span_context is not None and span_context.is_valid:
            context = trace.set_span_in_context(NonRecordingSpan(span_context))
        number, text = severity(rec)
        self._logger.emit(
            LogRecord(
                timestamp=int(rec.ended_at * 1e9),
                context=context or Context(),
                severity_number=number,
                severity_text=text,
                body=body(rec),
                attributes=attributes(rec),
                event_name=EVENT_NAME,
            )
        )

    def shutdown(self) -> None:
        """Flush queued records and stop the exporter."""
        if self.provider is None:
            return
        try:
            self.provider.shutdown()
        except Exception:  # an exporter failing at exit must not break shutdown
            log.warning("OpenTelemetry logger provider shutdown failed", exc_info=True)
