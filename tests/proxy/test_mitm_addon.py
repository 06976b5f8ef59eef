"""LlmsimAddon unit tests with mitmproxy's test doubles (no sockets)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any

import pytest
from mitmproxy import exceptions, tls
from mitmproxy.proxy import context
from mitmproxy.test import tflow

from llmsim.proxy.handler import DESTINATION_HEADER
from llmsim.proxy.mitm_addon import LlmsimAddon
from llmsim.proxy.state import ProxyState

from .conftest import QUIET, named

with warnings.catch_warnings():
    # mitmproxy's default addons import ldap3, which trips a pyasn1 DeprecationWarning at import time
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy.test import taddons


def _addon() -> LlmsimAddon:
    return LlmsimAddon(ProxyState(named({**QUIET, "interceptHosts": ["ollama:11434"]})), 4242, "secret")


def _hello(sni: str | None, address: tuple[str, int] = ("203.0.113.7", 443)) -> tls.ClientHelloData:
    with taddons.context() as tctx:
        ctx = context.Context(tflow.tclient_conn(), tctx.options)
        ctx.server.address = address
    hello: Any = SimpleNamespace(sni=sni)
    return tls.ClientHelloData(context=ctx, client_hello=hello)


@pytest.mark.parametrize(
    ("sni", "ignored"),
    [("api.openai.com", False), ("x.openai.azure.com", False), ("pypi.org", True), (None, True)],
)
def test_only_llm_hosts_are_intercepted(sni: str | None, ignored: bool) -> None:
    data = _hello(sni)
    _addon().tls_clienthello(data)
    assert data.ignore_connection is ignored


def test_intercepted_requests_go_to_the_data_path_marked_with_their_destination() -> None:
    addon = _addon()
    with taddons.context(addon):
        flow = tflow.tflow()
        flow.request.scheme, flow.request.host, flow.request.port = "https", "api.anthropic.com", 443
        addon.requestheaders(flow)
        assert (flow.request.scheme, flow.request.host, flow.request.port) == ("http", "127.0.0.1", 4242)
        assert flow.request.headers[DESTINATION_HEADER] == "secret https://api.anthropic.com:443"
        assert flow.request.stream is True
        flow.response = tflow.tresp()
        addon.responseheaders(flow)
        assert flow.response.stream is True


def test_plain_http_to_other_hosts_is_left_alone() -> None:
    addon = _addon()
    with taddons.context(addon):
        flow = tflow.tflow()
        flow.request.scheme, flow.request.host, flow.request.port = "http", "example.org", 80
        addon.requestheaders(flow)
        assert flow.request.host == "example.org" and DESTINATION_HEADER not in flow.request.headers
        flow.request.host, flow.request.port = "ollama", 11434
        addon.requestheaders(flow)
        assert flow.request.port == 4242


def test_options_are_validated_in_configure() -> None:
    from mitmproxy.addons.proxyserver import Proxyserver

    addon = _addon()
    with taddons.context(Proxyserver(), addon) as tctx:
        tctx.configure(addon, llmsim_intercept=["vllm:8000"])
        with pytest.raises(exceptions.OptionsError, match="interceptHosts"):
            tctx.configure(addon, llmsim_intercept=["http://nope"])
        with pytest.raises(exceptions.OptionsError, match="lazy"):
            tctx.configure(addon, connection_strategy="eager")
