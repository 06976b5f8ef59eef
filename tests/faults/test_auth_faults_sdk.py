"""Authentication and permission failures, as faults (header, rate, window) and as the
`faults.requireKey` mode, raised by the official SDKs as their own exception classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from llmsim import profiles
from llmsim.errors import ProfileError
from simserver import FAST, SimServer

USER: Any = [{"role": "user", "content": "Hello there"}]


def clients(server: SimServer, key: str, fault: str | None = None) -> dict[str, Callable[[], object]]:
    """One call per provider format, each with `key` and the forced `fault` header."""
    extra = {"x-llmsim-fault": fault} if fault else {}
    oai = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, default_headers=extra)
    azure = openai.AzureOpenAI(azure_endpoint=server.url, api_version="2024-10-21", api_key=key, max_retries=0,
                               default_headers=extra)  # fmt: skip
    anth = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0, default_headers=extra)
    gem = genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=server.url, headers=extra))
    oll = ollama.Client(host=server.url, headers={**extra, "Authorization": f"Bearer {key}"})
    return {
        "openai": lambda: oai.chat.completions.create(model="gpt-4o", messages=USER),
        "responses": lambda: oai.responses.create(model="gpt-4o", input="Hello there"),
        "azure": lambda: azure.chat.completions.create(model="gpt-4o", messages=USER),
        "anthropic": lambda: anth.messages.create(model="claude-sonnet-4", max_tokens=20, messages=USER),
        "gemini": lambda: gem.models.generate_content(model="gemini-2.0-flash", contents="Hello there"),
        "ollama": lambda: oll.chat(model="llama3", messages=USER),
    }


def raised(call: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


def test_the_authentication_fault_raises_each_sdks_401_class(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    seen = {
        name: raised(call) for name, call in clients(sim_server_factory(FAST), "k", "authentication").items()
    }
    for name in ("openai", "responses", "azure"):
        error = seen[name]
        assert isinstance(error, openai.AuthenticationError) and error.status_code == 401, name
    assert seen["openai"].code == "invalid_api_key"  # type: ignore[attr-defined]
    assert seen["azure"].code == "401" and "subscription key" in seen["azure"].message  # type: ignore[attr-defined]
    error = seen["anthropic"]
    assert isinstance(error, anthropic.AuthenticationError)
    assert error.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    gem = seen["gemini"]
    assert isinstance(gem, genai_errors.ClientError) and (gem.code, gem.status) == (400, "INVALID_ARGUMENT")
    assert gem.message == "API key not valid. Please pass a valid API key."
    oll = seen["ollama"]
    assert isinstance(oll, ollama.ResponseError) and oll.status_code == 401


def test_the_permission_fault_raises_each_sdks_403_class(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    seen = {name: raised(call) for name, call in clients(sim_server_factory(FAST), "k", "permission").items()}
    for name in ("openai", "responses", "azure"):
        assert isinstance(seen[name], openai.PermissionDeniedError), name
    assert "does not have access to model `gpt-4o`" in seen["openai"].message  # type: ignore[attr-defined]
    assert seen["azure"].code == "PermissionDenied"  # type: ignore[attr-defined]
    assert isinstance(seen["anthropic"], anthropic.PermissionDeniedError)
    gem = seen["gemini"]
    assert isinstance(gem, genai_errors.ClientError) and (gem.code, gem.status) == (403, "PERMISSION_DENIED")
    assert isinstance(seen["ollama"], ollama.ResponseError) and seen["ollama"].status_code == 403


def test_auth_faults_follow_rates_and_windows(sim_server_factory: Callable[..., SimServer]) -> None:
    spec = {**FAST, "faults": {"rates": {"authentication": 1.0}}}
    client = openai.OpenAI(base_url=sim_server_factory(spec).url + "/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    windowed = {**FAST, "faults": {"windows": [{"fault": "permission", "durationS": 600}]}}
    anth = anthropic.Anthropic(base_url=sim_server_factory(windowed).url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError):
        anth.messages.create(model="claude-sonnet-4", max_tokens=20, messages=USER)


def test_require_key_accepts_matching_keys_and_answers_others_with_the_providers_401(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    server = sim_server_factory({**FAST, "faults": {"requireKey": {"pattern": "sk-test-[a-z]+"}}})
    for name, call in clients(server, "sk-test-abc").items():
        assert call() is not None, name
    wrong = {name: raised(call) for name, call in clients(server, "sk-live-abc").items()}
    for name in ("openai", "responses", "azure"):
        assert isinstance(wrong[name], openai.AuthenticationError), name
    assert isinstance(wrong["anthropic"], anthropic.AuthenticationError)
    assert isinstance(wrong["gemini"], genai_errors.ClientError) and wrong["gemini"].code == 400
    assert isinstance(wrong["ollama"], ollama.ResponseError) and wrong["ollama"].status_code == 401
    # no key at all: the "you didn't provide one" answers (Gemini: 403 for unregistered callers)
    # (the OpenAI SDK refuses to send without a key: a bare HTTP client does)
    bare = httpx.post(server.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
    assert bare.status_code == 401 and bare.json()["error"]["code"] is None
    assert "You didn't provide an API key" in bare.json()["error"]["message"]
    gem = httpx.post(server.url + "/v1beta/models/gemini-2.0-flash:generateContent",
                     json={"contents": [{"parts": [{"text": "hi"}]}]})  # fmt: skip
    assert gem.status_code == 403 and gem.json()["error"]["status"] == "PERMISSION_DENIED"
    unkeyed = ollama.Client(host=server.url)
    with pytest.raises(ollama.ResponseError) as oll:
        unkeyed.chat(model="llama3", messages=USER)
    assert oll.value.status_code == 401


def test_require_key_rejects_a_pattern_that_is_not_a_regular_expression() -> None:
    with pytest.raises(ProfileError, match=r"faults\.requireKey\.pattern: .*not a regular expression"):
        profiles.parse_spec({"faults": {"requireKey": {"pattern": "sk-("}}}, "bad")
