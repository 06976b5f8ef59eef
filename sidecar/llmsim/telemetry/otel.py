"""OpenTelemetry wiring, configured only by the standard `OTEL_*` environment variables.

* `OTEL_SDK_DISABLED=true`: no-op tracer and meter, nothing is exported.
* `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`: `otlp` (default), `console` or `none`.
* OTLP is used only when an endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or the
  signal-specific `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`); without one,
  nothing is exported and spans are not recorded (incoming trace context is still propagated).
* Protocol: `http/protobuf` (the default, and the exporter llmsim ships). `grpc` works when
  `opentelemetry-exporter-otlp-proto-grpc` is installed; otherwise a warning names the package.
* Everything else (headers, timeouts, compression, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
  `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`) is read by the SDK itself.

Providers are never installed globally, so several apps (and tests) in one process stay apart.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from llmsim import __version__

log = logging.getLogger(__name__)

INSTRUMENTATION_NAME = "llmsim"
DEFAULT_SERVICE_NAME = "llmsim"

Signal = Literal["traces", "metrics", "logs"]


def sdk_disabled(env: Mapping[str, str]) -> bool:
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def exporter_choice(signal: Signal, env: Mapping[str, str]) -> str | None:
    """Which exporter a signal uses (`otlp`, `console`), or None when nothing is exported. Pure."""
    if sdk_disabled(env):
        return None
    names = [
        n.strip().lower() for n in env.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").split(",") if n.strip()
    ]
    if not names or "none" in names:
        return None
    name = names[0]
    if name == "otlp":
        endpoint = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return "otlp" if endpoint else None
    if name == "console":
        return "console"
    log.warning(
        "OTEL_%s_EXPORTER=%s is not supported by llmsim (use otlp, console or none)", signal.upper(), name
    )
    return None


def otlp_protocol(signal: Signal, env: Mapping[str, str]) -> str:
    return (
        env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _span_exporter(choice: str, env: Mapping[str, str]) -> SpanExporter | None:
    if choice == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = otlp_protocol("traces", env)
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            log.warning(
                "OTLP protocol grpc needs opentelemetry-exporter-otlp-proto-grpc; traces are not exported"
            )
            return None
        exporter: SpanExporter = GrpcSpanExporter()
        return exporter
    if protocol not in ("http/protobuf", "http"):
        log.warning(
            "OTLP protocol %r is not supported (use http/protobuf); traces are not exported", protocol
        )
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _metric_exporter(choice: str, env: Mapping[str, str]) -> MetricExporter | None:
    if choice == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    protocol = otlp_protocol("metrics", env)
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[import-not-found]
                OTLPMetricExporter as GrpcMetricExporter,
            )
        except ImportError:
            log.warning(
                "OTLP protocol grpc needs opentelemetry-exporter-otlp-proto-grpc; metrics are not exported"
            )
            return None
        exporter: MetricExporter = GrpcMetricExporter()
        return exporter
    if protocol not in ("http/protobuf", "http"):
        log.warning(
            "OTLP protocol %r is not supported (use http/protobuf); metrics are not exported", protocol
        )
        return None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def resource(service_name: str) -> Resource:
    """The SDK's resource (env detectors included), with `service_name` unless OTEL_* names one."""
    res = Resource.create()
    if str(res.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        res = res.merge(Resource({SERVICE_NAME: service_name}))
    return res


@dataclass
class OtelProviders:
    """A tracer and a meter, plus the SDK providers behind them (None when not exporting)."""

    tracer: trace.Tracer
    meter: metrics.Meter
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None

    @property
    def recording(self) -> bool:
        """True when spans are recorded and exported."""
        return self.tracer_provider is not None

    def shutdown(self) -> None:
        """Flush and stop the exporters (spans and metrics still queued are sent first). Blocks
        as long as the collector makes it: callers bound it (`telemetry.shutdown`)."""
        providers = [p for p in (self.tracer_provider, self.meter_provider) if p is not None]
        threads = [threading.Thread(target=_shutdown_one, args=(p,), daemon=True) for p in providers]
        for thread in threads:  # side by side: a stuck span export does not hold the metrics back
            thread.start()
        for thread in threads:
            thread.join()


def _shutdown_one(provider: TracerProvider | MeterProvider) -> None:
    try:
        provider.shutdown()
    except Exception:  # an exporter failing at exit must not break shutdown
        log.warning("OpenTelemetry provider shutdown failed", exc_info=True)


def from_env(
    service_name: str = DEFAULT_SERVICE_NAME,
    env: Mapping[str, str] | None = None,
    extra_metric_readers: tuple[MetricReader, ...] = (),
) -> OtelProviders:
    """Build tracer and meter from the `OTEL_*` variables (see the module docstring).

    `extra_metric_readers` (e.g. an InMemoryMetricReader in tests) force a real MeterProvider.
    """
    env = os.environ if env is None else env
    tracer: trace.Tracer = trace.NoOpTracer()
    meter: metrics.Meter = metrics.NoOpMeter(INSTRUMENTATION_NAME)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    if sdk_disabled(env):
        return OtelProviders(tracer, meter)
    res: Resource | None = None
    trace_choice = exporter_choice("traces", env)
    span_exporter = _span_exporter(trace_choice, env) if trace_choice else None
    if span_exporter is not None:
        res = resource(service_name)
        tracer_provider = TracerProvider(resource=res, shutdown_on_exit=False)  # see telemetry/shutdown.py
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME, __version__)
    metric_choice = exporter_choice("metrics", env)
    metric_exporter = _metric_exporter(metric_choice, env) if metric_choice else None
    readers: list[MetricReader] = list(extra_metric_readers)
    if metric_exporter is not None:
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    if readers:
        meter_provider = MeterProvider(
            metric_readers=readers, resource=res or resource(service_name), shutdown_on_exit=False
        )
        meter = meter_provider.get_meter(INSTRUMENTATION_NAME, __version__)
    return OtelProviders(tracer, meter, tracer_provider, meter_provider)
