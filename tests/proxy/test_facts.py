from __future__ import annotations

import json

import pytest

from llmsim.proxy.facts import request_info, stable_fraction


def _info(host: str, target: str, body: object = None, **headers: str):  # type: ignore[no-untyped-def]
    raw = json.dumps(body).encode() if body is not None else b""
    return request_info(host, 443, "POST", target, headers, raw)


def test_openai_model_and_stream_come_from_the_body() -> None:
    info = _info(
        "api.openai.com",
        "/v1/chat/completions",
        {"model": "gpt-4o", "stream": True},
        **{"x-request-id": "r1"},
    )
    assert (info.provider, info.model, info.stream, info.request_id) == ("openai", "gpt-4o", True, "r1")


def test_gemini_model_and_stream_come_from_the_path() -> None:
    info = _info(
        "generativelanguage.googleapis.com",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        {},
    )
    assert (info.provider, info.model, info.stream) == ("gemini", "gemini-2.0-flash", True)


def test_azure_deployment_stands_in_for_the_model() -> None:
    info = _info(
        "r.openai.azure.com", "/openai/deployments/prod-4o/chat/completions?api-version=1", {"messages": []}
    )
    assert (info.provider, info.model, info.stream) == ("azure", "prod-4o", False)


def test_ollama_streams_unless_told_otherwise() -> None:
    assert _info("ollama", "/api/chat", {"model": "llama3.1"}).stream is True
    assert _info("ollama", "/api/chat", {"model": "llama3.1", "stream": False}).stream is False


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b""])
def test_bodies_that_are_not_json_objects_are_fine(body: bytes) -> None:
    info = request_info("api.anthropic.com", 443, "POST", "/v1/messages", {}, body)
    assert (info.provider, info.model, info.stream) == ("anthropic", None, False)


def test_stable_fraction_depends_only_on_seed_and_key() -> None:
    assert stable_fraction(1, "abc") == stable_fraction(1, "abc")
    assert stable_fraction(1, "abc") != stable_fraction(2, "abc")
    values = [stable_fraction(0, str(i)) for i in range(4000)]
    assert all(0 <= v < 1 for v in values)
    share = sum(v < 0.3 for v in values) / len(values)
    assert abs(share - 0.3) < 4 * (0.3 * 0.7 / len(values)) ** 0.5
