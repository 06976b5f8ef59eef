"""Kubernetes timestamps (RFC 3339, `Z` or an offset) read back from stored objects: one parser
for the operator's handlers and the sidecar's profile watch."""

from __future__ import annotations

import datetime as dt
from typing import Any


def parse_time(value: Any) -> dt.datetime | None:
    """An aware datetime for an RFC 3339 timestamp (naive ones are taken as UTC); None when the
    value is missing or not a timestamp."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
