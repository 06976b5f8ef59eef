"""Property: random and malformed bodies on every provider route get a provider-shaped 4xx (or a
valid answer), never a 5xx traceback and never a hang."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmsim.api.faults import FaultType
from llmsim.profiles import ProfileRegistry
from llmsim.server import routes
from llmsim.server.app import create_app
from simserver import SimServer, profile_from

SPEC = {
    "seed": 1,
    "latency": {
        "ttftMs": {"type": "constant", "value": 1},
        "itlMs": {"type": "constant", "value": 1},
        "outputTokens": {"type": "constant", "value": 3},
    },
}
FILL = {"deployment": "dep", "version": "v1beta", "model": "gemini-2.0-flash"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: FILL[m.group(1)], path)


ROUTES = [
    (route.endpoint.provider, concrete(route.path)) for route in routes.all_routes() if route.method == "POST"
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "model", "messages", "prompt", "input", "contents", "max_tokens", "stream", "tools", "tool_choice",
    "system", "stop", "n", "options", "requests", "content", "generationConfig", "systemInstruction",
    "response_format", "stream_options", "max_completion_tokens", "stop_sequences", "encoding_format",
]  # fmt: skip
plausible = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
"""Objects with the right field names and arbitrary values (deeper into the parsers)."""

raw_bytes = st.binary(max_size=200)
bodies = (
    raw_bytes
    | json_values.map(lambda v: json.dumps(v).encode())
    | plausible.map(lambda v: json.dumps(v).encode())
    | plausible.map(lambda v: json.dumps(v).encode()[:-1])  # truncated JSON
)


FAULT_NAMES = {f.value for f in FaultType}
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
odd_headers = st.fixed_dictionaries(
    {},
    optional={
        "x-llmsim-fault": header_text.filter(lambda v: v.strip().lower() not in FAULT_NAMES),
        "x-llmsim-seed": header_text,
        "x-simulation-mode": header_text,
        "x-llmsim-profile": header_text,
    },
)
"""Simulator headers with values that are usually wrong (never a valid fault name: those fail on purpose)."""


def provider_shaped(provider: str, body: Any) -> bool:
    if provider in ("openai", "azure"):
        err = body.get("error") if isinstance(body, dict) else None
        return (
            isinstance(err, dict) and isinstance(err.get("message"), str) and isinstance(err.get("type"), str)
        )
    if provider == "anthropic":
        err = body.get("error") if isinstance(body, dict) else None
        return body.get("type") == "error" and isinstance(err, dict) and isinstance(err.get("message"), str)
    if provider == "gemini":
        err = body.get("error") if isinstance(body, dict) else None
        return (
            isinstance(err, dict) and isinstance(err.get("code"), int) and isinstance(err.get("status"), str)
        )
    return isinstance(body, dict) and isinstance(body.get("error"), str)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    server = SimServer(create_app(ProfileRegistry(profile_from(SPEC)))).start()
    with httpx.Client(base_url=server.url, timeout=5.0, params={"api-version": "2024-10-21"}) as http:
        yield http
    server.stop()


@pytest.mark.parametrize(("provider", "path"), ROUTES, ids=[path for _, path in ROUTES])
def test_any_body_gets_a_provider_shaped_client_error_or_an_answer(
    client: httpx.Client, provider: str, path: str
) -> None:
    @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(
        body=bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]), extra=odd_headers
    )
    def check(body: bytes, content_type: str, extra: dict[str, str]) -> None:
        headers = {"content-type": content_type, **extra} if content_type else dict(extra)
        response = client.post(path, content=body, headers=headers)  # a hang fails with a timeout
        assert response.status_code < 500, (response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert 400 <= response.status_code < 500
            assert provider_shaped(provider, response.json()), response.text[:300]

    check()
