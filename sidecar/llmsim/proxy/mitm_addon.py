"""The mitmproxy engine (`llmsim proxy --engine mitmproxy`): mitmproxy accepts the connections,
handles CONNECT, mints certificates and terminates TLS; this addon

* tunnels every non-LLM host byte for byte (`tls_clienthello` -> `ignore_connection`), and
* hands every intercepted request to the in-process data path (an aiohttp server on loopback),
  marking the original destination with a per-process secret header, with the response streamed.

Slower than the default front door (mitmproxy parses and re-frames every chunk in Python), kept
for comparison in `make bench` and for setups that want mitmproxy's full protocol support.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions, http, tls

from llmsim.proxy import handler
from llmsim.proxy.scope import Scope
from llmsim.proxy.state import ProxyState

log = logging.getLogger("llmsim.proxy")

DESTINATION_HEADER = handler.DESTINATION_HEADER
"""`<token> <scheme>://<host>:<port>`: where an intercepted request was going (set by this addon,
honoured by the data path only with the process's token, stripped before anything goes upstream)."""


class LlmsimAddon:
    """Scope decisions and the hand-over to the data path. Options validated in `configure()`."""

    def __init__(self, state: ProxyState, datapath_port: int, token: str) -> None:
        self.state = state
        self.datapath_port = datapath_port
        self.token = token

    def load(self, loader: Any) -> None:
        loader.add_option(
            "llmsim_intercept", Sequence[str], [], "Extra hosts (host, *.domain, host:port) to intercept."
        )

    def configure(self, updated: set[str]) -> None:
        if "llmsim_intercept" in updated:
            try:
                Scope.build(ctx.options.llmsim_intercept)
            except ValueError as exc:
                raise _options_error(str(exc)) from None
        if "connection_strategy" in updated and ctx.options.connection_strategy != "lazy":
            raise _options_error("connection_strategy must be 'lazy' (simulate never connects upstream)")

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        server = data.context.server.address
        host = data.client_hello.sni or (server[0] if server else "")
        port = server[1] if server else 443
        if not self.state.scope.intercepts(host, port):
            data.ignore_connection = True

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        port = req.port
        if not self.state.scope.intercepts(req.pretty_host, port) and req.scheme == "http":
            return  # plain HTTP to a host we do not intercept: mitmproxy forwards it as is
        req.headers[DESTINATION_HEADER] = f"{self.token} {req.scheme}://{req.pretty_host}:{port}"
        req.scheme, req.host, req.port = "http", "127.0.0.1", self.datapath_port
        flow.request.stream = True

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            flow.response.stream = True


def _options_error(message: str) -> Exception:
    error: Exception = exceptions.OptionsError(message)  # type: ignore[no-untyped-call]
    return error
