"""What the proxy needs to know about an intercepted request before deciding what to do. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from llmsim import headers as llmsim_headers
from llmsim.providers import catalog

_GEMINI = re.compile(r"^/v1(?:beta|alpha)?/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)")
_AZURE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/")
REQUEST_ID_HEADERS = (*llmsim_headers.REQUEST_IDS, "x-client-request-id")
"""The simulator's request-id headers, plus the OpenAI SDK's per-request id (seeds `percentage`)."""


@dataclass(frozen=True)
class RequestInfo:
    """The LLM-relevant facts of one request."""

    host: str
    port: int
    method: str
    path: str
    provider: str
    model: str | None
    stream: bool
    request_id: str | None


def request_info(
    host: str, port: int, method: str, target: str, headers: Mapping[str, str], body: bytes
) -> RequestInfo:
    """Facts from the request; `headers` keys are lower-case; a body that is not JSON is fine."""
    path = target.split("?", 1)[0]
    query = target.split("?", 1)[1] if "?" in target else ""
    provider = catalog.classify(path, headers, dict(parse_qsl(query)), host)
    doc: dict[str, object] = {}
    if body[:1] in (b"{", b" ", b"\n"):
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # not understood: no facts from it
            parsed = None
        if isinstance(parsed, dict):
            doc = parsed
    model = doc.get("model") if isinstance(doc.get("model"), str) else None
    stream = doc.get("stream") is True
    gemini = _GEMINI.match(path)
    if gemini:
        model = gemini.group("model")
        stream = gemini.group("method") == "streamGenerateContent"
    azure = _AZURE.match(path)
    if azure and model is None:
        model = azure.group("deployment")
    if provider == "ollama" and path in ("/api/chat", "/api/generate") and "stream" not in doc:
        stream = True  # Ollama streams unless told otherwise
    if "alt=sse" in query:
        stream = True
    request_id = next((headers[h] for h in REQUEST_ID_HEADERS if headers.get(h)), None)
    return RequestInfo(
        host.lower(), port, method.upper(), path, provider, str(model) if model else None, stream, request_id
    )


def stable_fraction(seed: int, key: str) -> float:
    """A number in [0, 1) that depends only on (seed, key): the same on every replica."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
