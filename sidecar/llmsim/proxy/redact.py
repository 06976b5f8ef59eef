"""The proxy's name for `llmsim.redact` (redaction has one home, shared with telemetry)."""

from llmsim.redact import REDACTED, SECRET_HEADERS, RedactingFilter, redact_headers, redact_text, redact_url

__all__ = ["REDACTED", "SECRET_HEADERS", "RedactingFilter", "redact_headers", "redact_text", "redact_url"]
