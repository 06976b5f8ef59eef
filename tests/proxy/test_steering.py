"""Headers cannot steer the proxy (issue 18, item 4): the destination comes from the CONNECT
target (or the TLS listener's SNI, or base-url capture's configured upstream), and
`x-llmsim-upstream` is honoured only in base-url capture, only when the profile allows it, and
only towards a host the proxy intercepts."""

from __future__ import annotations

import json

import pytest

from .capture import send
from .conftest import QUIET, ProxyFactory
from .fakes import Upstream

CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
SECRET = {"Authorization": "Bearer sk-steer-secret"}


@pytest.mark.parametrize("capture", ["proxy", "host-alias"])
async def test_the_inner_host_header_cannot_leave_the_intercepted_host_in_simulate(
    proxy_factory: ProxyFactory, upstream: Upstream, capture: str
) -> None:
    # origin.test is outside the scope: were the Host header believed, the request would be
    # forwarded there untouched instead of simulated
    proxy = await proxy_factory(QUIET, tls_listen=("127.0.0.1", 0))
    status, _, body = await send(
        proxy, capture, "POST", "/v1/chat/completions", CHAT, {**SECRET, "Host": "origin.test"}
    )
    assert status == 200 and json.loads(body)["object"] == "chat.completion"
    assert upstream.requests == []


@pytest.mark.parametrize("capture", ["proxy", "host-alias"])
async def test_the_inner_host_header_cannot_pick_the_destination_in_passthrough(
    proxy_factory: ProxyFactory, upstream: Upstream, capture: str
) -> None:
    proxy = await proxy_factory({**QUIET, "mode": "passthrough"}, tls_listen=("127.0.0.1", 0))
    status, _, body = await send(
        proxy, capture, "POST", "/v1/chat/completions", CHAT, {**SECRET, "Host": "origin.test"}
    )
    assert status == 200, body[:300]
    [seen] = upstream.requests
    assert seen["Host"] == "api.openai.com"  # the CONNECT target / SNI, not the inner Host


@pytest.mark.parametrize("allowed", [False, True])
@pytest.mark.parametrize("capture", ["proxy", "host-alias", "iptables-plain"])
async def test_the_upstream_header_is_refused_outside_base_url_capture(
    proxy_factory: ProxyFactory, upstream: Upstream, capture: str, allowed: bool
) -> None:
    spec = {**QUIET, "mode": "passthrough", "allowUpstreamHeader": allowed}
    proxy = await proxy_factory(spec, tls_listen=("127.0.0.1", 0))
    headers = {**SECRET, "x-llmsim-upstream": "https://api.anthropic.com"}
    status, _, body = await send(proxy, capture, "POST", "/v1/chat/completions", CHAT, headers)
    assert status == 400
    error = json.loads(body)["error"]
    assert error["param"] == "x-llmsim-upstream" and "base-url capture" in error["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("mode", ["simulate", "perturb", "passthrough"])
async def test_the_upstream_header_is_refused_unless_the_profile_allows_it(
    proxy_factory: ProxyFactory, upstream: Upstream, mode: str
) -> None:
    proxy = await proxy_factory(QUIET)
    # the attack of the issue: passthrough requested per request, the credentials sent anywhere
    headers = {**SECRET, "x-simulation-mode": mode, "x-llmsim-upstream": "https://origin.test"}
    status, _, body = await send(proxy, "base-url", "POST", "/v1/chat/completions", CHAT, headers)
    assert status == 400
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "x-llmsim-upstream"
    assert "allowUpstreamHeader" in error["message"]
    assert upstream.requests == []


async def test_an_allowed_upstream_header_may_name_only_an_intercepted_host(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory({**QUIET, "mode": "passthrough", "allowUpstreamHeader": True})
    for bad in ("https://origin.test", "https://user:pw@api.anthropic.com", "ftp://api.openai.com", "x"):
        headers = {**SECRET, "x-llmsim-upstream": bad}
        status, _, body = await send(proxy, "base-url", "POST", "/v1/chat/completions", CHAT, headers)
        assert status == 400, (bad, body[:200])
        assert json.loads(body)["error"]["param"] == "x-llmsim-upstream"
    assert upstream.requests == []
    headers = {**SECRET, "x-llmsim-upstream": "https://api.anthropic.com"}
    status, _, body = await send(proxy, "base-url", "POST", "/v1/chat/completions", CHAT, headers)
    assert status == 200, body[:300]
    [seen] = upstream.requests
    assert seen["Host"] == "api.anthropic.com"
    assert not any(k.lower().startswith("x-llmsim-") for k in seen)


async def test_base_url_capture_without_the_header_goes_to_the_configured_upstream(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory({**QUIET, "mode": "passthrough"})
    status, _, body = await send(proxy, "base-url", "POST", "/v1/chat/completions", CHAT, SECRET)
    assert status == 200, body[:300]
    assert [r["Host"] for r in upstream.requests] == ["api.openai.com"]
