"""The proxy never answers 500 for a request it could forward (issue 18, item 2).

Bodies of any allowed size are simulated, in every capture mode; a body the proxy cannot parse
(JSON nested 5,000 deep) is forwarded unchanged to a host outside the scope, forwarded unchanged
to the provider in perturb and passthrough, and answered with the provider's own 400 in simulate
(the fail-open policy of docs/proxy.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from llmsim.proxy.runner import ProxyServer

from .capture import CAPTURE_MODES, send
from .conftest import QUIET, ProxyFactory
from .fakes import Upstream, start_upstream

DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"model":"gpt-4o-mini","messages":' + DEEP + b"}"


def chat_body(size: int) -> bytes:
    """A valid chat request of about `size` bytes."""
    text = "word " * (size // 5)
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}).encode()


@pytest.fixture
async def plain_origin() -> AsyncIterator[Upstream]:
    """A plain-HTTP origin (a host outside the scope, or an in-cluster provider on a plain port)."""
    up = Upstream(ttft_s=0.0)
    runner = await start_upstream(up, None)
    yield up
    await runner.cleanup()


async def _proxy(
    proxy_factory: ProxyFactory, upstream: Upstream, plain_origin: Upstream, mode: str
) -> ProxyServer:
    resolve = {h: ("127.0.0.1", upstream.port) for h in ("api.openai.com", "api.anthropic.com")}
    resolve["plain.test"] = ("127.0.0.1", plain_origin.port)
    resolve["ollama.test"] = ("127.0.0.1", plain_origin.port)
    return await proxy_factory(
        {**QUIET, "mode": mode, "models": {"contextWindow": 10_000_000}},
        tls_listen=("127.0.0.1", 0),
        resolve=resolve,
        intercept=("ollama.test:80",),
    )


@pytest.mark.parametrize("capture", CAPTURE_MODES)
@pytest.mark.parametrize("size", [131_073, 1_000_000, 8_000_000])
async def test_bodies_of_any_allowed_size_are_simulated(
    proxy_factory: ProxyFactory, upstream: Upstream, plain_origin: Upstream, capture: str, size: int
) -> None:
    proxy = await _proxy(proxy_factory, upstream, plain_origin, "simulate")
    body = chat_body(size)
    assert len(body) > size
    status, headers, answer = await send(proxy, capture, "POST", "/v1/chat/completions", body)
    assert status == 200, answer[:300]
    assert "x-llmsim-fail-open" not in headers
    assert json.loads(answer)["object"] == "chat.completion"
    assert upstream.bodies == [] and plain_origin.bodies == []


async def test_a_body_over_the_limit_gets_the_providers_413_not_a_500(
    proxy_factory: ProxyFactory, upstream: Upstream, plain_origin: Upstream
) -> None:
    proxy = await _proxy(proxy_factory, upstream, plain_origin, "simulate")
    body = chat_body(33 * 1024 * 1024)
    status, _, answer = await send(proxy, "proxy", "POST", "/v1/chat/completions", body, timeout_s=30)
    assert status == 413, answer[:300]
    assert "error" in json.loads(answer)


@pytest.mark.parametrize("capture", CAPTURE_MODES)
async def test_an_unparseable_llm_body_is_answered_with_the_providers_400_in_simulate(
    proxy_factory: ProxyFactory, upstream: Upstream, plain_origin: Upstream, capture: str
) -> None:
    proxy = await _proxy(proxy_factory, upstream, plain_origin, "simulate")
    for body in (DEEP, DEEP_OBJECT):
        status, headers, answer = await send(proxy, capture, "POST", "/v1/chat/completions", body)
        assert status == 400, answer[:300]
        error = json.loads(answer)["error"]
        assert error["type"] == "invalid_request_error"
        assert headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("mode", ["passthrough", "perturb"])
@pytest.mark.parametrize("capture", ["proxy", "base-url", "host-alias"])
async def test_an_unparseable_llm_body_is_forwarded_unchanged_in_perturb_and_passthrough(
    proxy_factory: ProxyFactory, upstream: Upstream, plain_origin: Upstream, capture: str, mode: str
) -> None:
    proxy = await _proxy(proxy_factory, upstream, plain_origin, mode)
    status, _, answer = await send(proxy, capture, "POST", "/v1/chat/completions", DEEP_OBJECT)
    assert upstream.bodies == [DEEP_OBJECT]
    assert status == 400 and b"could not parse the JSON body" in answer  # the provider's own answer


@pytest.mark.parametrize("mode", ["passthrough", "perturb"])
async def test_an_unparseable_body_to_a_plain_provider_port_is_forwarded_unchanged(
    proxy_factory: ProxyFactory, upstream: Upstream, plain_origin: Upstream, mode: str
) -> None:
    proxy = await _proxy(proxy_factory, upstream, plain_origin, mode)
    status, _, answer = await send(
        proxy, "iptables-plain", "POST", "/v1/chat/completions", DEEP_OBJECT, host="ollama.test"
    )
    assert plain_origin.bodies == [DEEP_OBJECT]
    assert status == 400 and b"could not parse the JSON body" in answer


@pytest.mark.parametrize("mode", ["simulate", "perturb", "passthrough"])
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, b"\xff\xfe not json", b"x" * 300_000])
async def test_a_body_to_a_host_outside_the_scope_is_forwarded_unchanged(
    proxy_factory: ProxyFactory, upstream: Upstream, plain_origin: Upstream, mode: str, body: bytes
) -> None:
    proxy = await _proxy(proxy_factory, upstream, plain_origin, mode)
    status, _, answer = await send(proxy, "iptables-plain", "POST", "/echo", body, host="plain.test")
    assert (status, answer) == (200, body)
    assert plain_origin.bodies == [body]
