"""Telemetry settings from `LLMSIM_*` environment variables (OpenTelemetry reads its own `OTEL_*`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmsim.telemetry.labels import DEFAULT_MODEL_LIMIT


class TelemetrySettings(BaseSettings):
    """Knobs of metrics, sessions and events. Each field reads `LLMSIM_<FIELD>` (upper case)."""

    model_config = SettingsConfigDict(
        env_prefix="LLMSIM_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    model_label_limit: int = Field(default=DEFAULT_MODEL_LIMIT, ge=0, le=10_000)
    """Distinct model names, beyond those the profiles name, that get their own metric series;
    later names are reported as `other`."""
    max_sessions: int = Field(default=200, ge=1, le=100_000)
    """Sessions kept in memory; beyond that the oldest completed (else oldest) is forgotten."""
    session_max_samples: int = Field(default=20_000, ge=100, le=10_000_000)
    """Latency samples kept per session and metric (8 bytes each; a uniform reservoir beyond that).
    With the defaults a session holds at most ~0.5 MB, all sessions together ~100 MB."""
    events_sink_url: str | None = None
    """Where CloudEvents are POSTed (structured JSON mode); unset: events are only logged."""
    events_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    """Events waiting for the sink; when full, new events are dropped and counted."""
    events_max_attempts: int = Field(default=3, ge=1, le=20)
    """Delivery attempts per event (with exponential backoff from `LLMSIM_EVENTS_BACKOFF_S`)."""
    events_timeout_s: float = Field(default=2.0, gt=0, le=60)
    """Timeout of one delivery attempt."""
    events_backoff_s: float = Field(default=0.2, ge=0, le=60)
    """Wait before the second attempt; doubled for every further one."""
    events_concurrency: int = Field(default=2, ge=1, le=64)
    """Deliveries in flight at once."""
    events_source: str = "/llmsim"
    """The CloudEvents `source` attribute."""
    anomaly_window: int = Field(default=50, ge=5, le=100_000)
    """Requests (per session, else per profile) the anomaly detector looks back over."""
