"""The provider catalog: one classifier and one set of host/credential facts for every reader."""

from __future__ import annotations

import pytest

from llmsim import headers
from llmsim.providers import catalog
from llmsim.proxy import redact, scope
from llmsim_operator import injection


@pytest.mark.parametrize(
    ("host", "path", "request_headers", "query", "expected"),
    [
        ("api.openai.com", "/v1/chat/completions", {}, {}, "openai"),
        ("myres.openai.azure.com", "/openai/deployments/d/chat/completions", {}, {}, "azure"),
        ("api.anthropic.com:443", "/v1/models", {}, {}, "anthropic"),
        ("generativelanguage.googleapis.com", "/v1/models", {}, {}, "gemini"),
        # the host decides over the path: a provider's own host is that provider
        ("api.openai.com", "/v1/messages", {}, {}, "openai"),
        # base-url capture and `llmsim serve`: no provider host, the path decides
        ("127.0.0.1:8080", "/openai/v1/chat/completions", {}, {}, "azure"),
        ("", "/v1/messages/count_tokens", {}, {}, "anthropic"),
        ("", "/v1beta/models", {}, {}, "gemini"),
        ("", "/v1/models/gemini-2.0-flash:generateContent", {}, {}, "gemini"),
        ("ollama.ml.svc:11434", "/api/chat", {}, {}, "ollama"),
        # shared paths: the credentials decide (DESIGN.md)
        ("", "/v1/models", {"x-goog-api-key": "k"}, {}, "gemini"),
        ("", "/v1/models", {}, {"key": "k"}, "gemini"),
        ("", "/v1/models", {"anthropic-version": "2023-06-01"}, {}, "anthropic"),
        ("", "/v1/models", {"x-api-key": "k"}, {}, "anthropic"),
        ("", "/v1/models", {"authorization": "Bearer k"}, {}, "openai"),
        ("vllm:8000", "/v1/chat/completions", {}, {}, "openai"),
    ],
)
def test_classify_names_the_provider_by_host_then_path_then_credentials(
    host: str, path: str, request_headers: dict[str, str], query: dict[str, str], expected: str
) -> None:
    assert catalog.classify(path, request_headers, query, host) == expected


def test_every_reader_takes_its_facts_from_the_catalog() -> None:
    assert (
        scope.DEFAULT_TLS_HOSTS
        == catalog.TLS_HOSTS
        == (
            "api.openai.com",
            "*.openai.azure.com",
            "api.anthropic.com",
            "generativelanguage.googleapis.com",
        )
    )
    assert injection.PROVIDER_HOSTS == catalog.ALIAS_HOSTS and "*.openai.azure.com" not in catalog.ALIAS_HOSTS
    assert (
        headers.CREDENTIALS
        == catalog.CREDENTIAL_HEADERS
        == (
            "authorization",
            "api-key",
            "x-api-key",
            "x-goog-api-key",
        )
    )
    assert set(catalog.CREDENTIAL_HEADERS) < redact.SECRET_HEADERS
    assert catalog.default_upstreams() == {
        "openai": "https://api.openai.com",
        "anthropic": "https://api.anthropic.com",
        "gemini": "https://generativelanguage.googleapis.com",
    }


def test_base_url_variables_point_every_sdk_at_one_server() -> None:
    assert dict(catalog.base_url_env("http://127.0.0.1:15080")) == {
        "OPENAI_BASE_URL": "http://127.0.0.1:15080/v1",
        "AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:15080",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:15080",
        "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:15080",
        "OLLAMA_HOST": "http://127.0.0.1:15080",
    }
    assert dict(injection.capture_env(injection.Capture.BASE_URL)) == dict(
        catalog.base_url_env(injection.PROXY_URL)
    )


def test_unknown_providers_are_named_in_the_error() -> None:
    assert catalog.get("gemini") is catalog.GEMINI
    with pytest.raises(KeyError, match="known: openai, azure, anthropic, gemini, ollama"):
        catalog.get("mistral")


def test_the_catalog_needs_nothing_but_the_standard_library() -> None:
    """The operator reads it: importing it must not pull in the simulator's dependencies."""
    import subprocess
    import sys

    code = (
        "import sys; import llmsim.providers.catalog; "
        "heavy = [m for m in ('numpy', 'aiohttp', 'pydantic', 'llmsim.simulation') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
