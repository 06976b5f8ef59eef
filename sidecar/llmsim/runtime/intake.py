"""Request intake: the HTTP request read into `HttpRequestFacts`, the per-request headers checked,
and the parsed `GenerationRequest` enriched with what only the HTTP layer knows.

The simulator's pipeline and the proxy's data path both take requests in through here, so a
request means the same to both: the same credential fingerprint (rate-limit buckets), the same
client request id (fault decisions, fail-first), the same errors for bad `x-llmsim-*` headers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from aiohttp import web

from llmsim import headers
from llmsim.api.faults import FaultType
from llmsim.api.profile import Mode
from llmsim.providers import catalog
from llmsim.providers.base import ApiError, ErrorKind, HttpRequestFacts
from llmsim.simulation import faults
from llmsim.simulation.request import GenerationRequest


def new_request_id() -> str:
    """24 random hex digits (as uuid4().hex[:24] gave, without building a UUID)."""
    return os.urandom(12).hex()


def api_key_id(request_headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """A short non-reversible fingerprint of the caller's credential (never the credential)."""
    for name in headers.CREDENTIALS:
        value = request_headers.get(name)
        if value:
            return hashlib.sha256(value.removeprefix("Bearer ").encode()).hexdigest()[:12]
    key = query.get(catalog.CREDENTIAL_QUERY)
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else None


def facts_of(request: web.Request, body: bytes, request_id: str = "") -> HttpRequestFacts:
    """The facts of a request whose body has been read (header names lower-cased)."""
    lowered = {k.lower(): v for k, v in request.headers.items()}
    return HttpRequestFacts(
        request.method, request.path, dict(request.match_info), dict(request.query), lowered, body, request_id
    )


async def read_facts(
    request: web.Request, limit: int, request_id: str
) -> tuple[HttpRequestFacts, ApiError | None]:
    """Read the body within `limit` bytes; an oversize body becomes a TOO_LARGE error (and empty facts body)."""
    error: ApiError | None = None
    body = b""
    if request.content_length is not None and request.content_length > limit:
        error = ApiError(
            ErrorKind.TOO_LARGE,
            f"Request body too large: {request.content_length} bytes; the limit is {limit} bytes.",
        )
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                error = ApiError(ErrorKind.TOO_LARGE, f"Request body too large: more than {limit} bytes.")
                break
            chunks.append(chunk)
        body = b"".join(chunks)
    return facts_of(request, body, request_id), error


def enrich(gen: GenerationRequest, facts: HttpRequestFacts) -> GenerationRequest:
    """The parsed request with the caller's credential fingerprint and client request id.

    (`dataclasses.replace` without re-running `__init__` over every field: GenerationRequest is a
    plain frozen dataclass, so a copy of its fields with two of them changed is the same object.)"""
    enriched = object.__new__(GenerationRequest)
    fields = enriched.__dict__
    fields.update(gen.__dict__)
    fields["api_key_id"] = api_key_id(facts.headers, facts.query)
    fields["client_request_id"] = headers.client_request_id(facts.headers)
    return enriched


def requested_mode(request_headers: Mapping[str, str]) -> Mode | None:
    """The `x-simulation-mode` of the request (None when absent); ApiError naming the header."""
    try:
        return headers.parse_mode(request_headers.get(headers.MODE))
    except ValueError as exc:
        raise ApiError(ErrorKind.INVALID_REQUEST, str(exc), param=headers.MODE) from None


def forced_fault(request_headers: Mapping[str, str]) -> FaultType | None:
    """The fault forced by `x-llmsim-fault` (None when absent); ApiError naming the accepted values."""
    try:
        return faults.parse_forced(request_headers.get(headers.FAULT))
    except ValueError as exc:
        raise ApiError(ErrorKind.INVALID_REQUEST, str(exc), param=headers.FAULT) from None
