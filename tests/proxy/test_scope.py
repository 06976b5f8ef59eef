from __future__ import annotations

import pytest

from llmsim.proxy.scope import Scope


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("api.openai.com", 443, True),
        ("API.OpenAI.com.", 443, True),
        ("myres.openai.azure.com", 443, True),
        ("openai.azure.com", 443, False),
        ("api.anthropic.com", 443, True),
        ("generativelanguage.googleapis.com", 443, True),
        ("pypi.org", 443, False),
        ("ollama", 11434, True),
        ("ollama", 80, False),
        ("vllm.ml.svc", 8000, True),
    ],
)
def test_scope_covers_providers_and_profile_hosts(host: str, port: int, expected: bool) -> None:
    scope = Scope.build(["ollama:11434", "*.ml.svc"])
    assert scope.intercepts(host, port) is expected


@pytest.mark.parametrize("entry", ["http://x", "a b", "", "host:99999", "host:"])
def test_bad_intercept_hosts_are_named(entry: str) -> None:
    with pytest.raises(ValueError, match="interceptHosts"):
        Scope.build([entry])
