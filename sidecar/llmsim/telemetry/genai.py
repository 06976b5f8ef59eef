"""OpenTelemetry GenAI semantic conventions: span attributes, span names and metric instruments.

Names follow https://opentelemetry.io/docs/specs/semconv/gen-ai/ (spelled out here: the
constants in opentelemetry-semantic-conventions are deprecated in favour of a separate package).
"""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.util.types import AttributeValue

from llmsim.telemetry.records import RequestRecord

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"

FIRST_TOKEN_EVENT = "gen_ai.first_token"
"""Span event at the moment the first output token was sent."""

FAULT_TYPE = "llmsim.fault.type"
FAULT_REASON = "llmsim.fault.reason"
MODE = "llmsim.mode"
SESSION_ID = "llmsim.session.id"
PROFILE = "llmsim.profile"
OUTCOME = "llmsim.outcome"
STREAM = "llmsim.stream"
TTFT = "llmsim.ttft_s"

_PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "ollama": "ollama",
}
_OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "completion": "text_completion",
    "embeddings": "embeddings",
}

DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


def provider_name(provider: str) -> str:
    """`gen_ai.provider.name` of an llmsim provider (`azure` -> `azure.ai.openai`, ...)."""
    return _PROVIDERS.get(provider, provider)


def operation_name(provider: str, operation: str) -> str:
    """`gen_ai.operation.name`: Gemini's generate calls are `generate_content`, chat is `chat`, ..."""
    if provider == "gemini" and operation in ("chat", "completion", "responses"):
        return "generate_content"
    return _OPERATIONS.get(operation, operation)


def span_name(rec: RequestRecord) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}` as the conventions ask."""
    op = operation_name(rec.provider, rec.operation)
    return f"{op} {rec.model}" if rec.model else op


def span_attributes(rec: RequestRecord) -> dict[str, AttributeValue]:
    """Attributes of the request's span (GenAI conventions plus `llmsim.*` fault/session facts)."""
    attrs: dict[str, AttributeValue] = {
        OPERATION_NAME: operation_name(rec.provider, rec.operation),
        PROVIDER_NAME: provider_name(rec.provider),
        MODE: rec.mode,
        OUTCOME: rec.outcome,
        STREAM: rec.stream,
    }
    if rec.model:
        attrs[REQUEST_MODEL] = rec.model
    if rec.response_model:
        attrs[RESPONSE_MODEL] = rec.response_model
    if rec.request_id:
        attrs[RESPONSE_ID] = rec.request_id
    if rec.ok or rec.output_tokens or rec.input_tokens:
        attrs[USAGE_INPUT_TOKENS] = rec.input_tokens
        attrs[USAGE_OUTPUT_TOKENS] = rec.output_tokens
    if rec.finish_reasons:
        attrs[RESPONSE_FINISH_REASONS] = list(rec.finish_reasons)
    if rec.fault:
        attrs[FAULT_TYPE] = rec.fault
        if rec.fault_reason:
            attrs[FAULT_REASON] = rec.fault_reason
    if rec.session_id:
        attrs[SESSION_ID] = rec.session_id
    if rec.profile:
        attrs[PROFILE] = rec.profile
    if not rec.ok:
        attrs[ERROR_TYPE] = rec.outcome
    if rec.status is not None:
        attrs["http.response.status_code"] = rec.status
    return attrs


class GenAiInstruments:
    """The OTel metric instruments mirroring the Prometheus histograms."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=[float(b) for b in TOKEN_BUCKETS],
        )
        self.ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            unit="s",
            description="Time to generate the first token for successful responses.",
            explicit_bucket_boundaries_advisory=list(TTFT_BUCKETS_S),
        )
        self.tpot = meter.create_histogram(
            "gen_ai.server.time_per_output_token",
            unit="s",
            description="Time per output token generated after the first token for successful responses.",
            explicit_bucket_boundaries_advisory=list(TPOT_BUCKETS_S),
        )

    def record(self, rec: RequestRecord, model_label: str) -> None:
        attrs: dict[str, AttributeValue] = {
            OPERATION_NAME: operation_name(rec.provider, rec.operation),
            PROVIDER_NAME: provider_name(rec.provider),
            REQUEST_MODEL: model_label,
            MODE: rec.mode,
        }
        if not rec.ok:
            attrs[ERROR_TYPE] = rec.outcome
        self.duration.record(rec.e2e_s, attrs)
        if rec.input_tokens:
            self.token_usage.record(rec.input_tokens, {**attrs, TOKEN_TYPE: "input"})
        if rec.output_tokens:
            self.token_usage.record(rec.output_tokens, {**attrs, TOKEN_TYPE: "output"})
        if rec.ok and rec.ttft_s is not None:
            self.ttft.record(rec.ttft_s, attrs)
            if rec.output_tokens > 1:
                self.tpot.record(max(0.0, rec.e2e_s - rec.ttft_s) / (rec.output_tokens - 1), attrs)
