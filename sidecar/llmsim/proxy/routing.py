"""Where an intercepted request goes: its destination, whether it is base-url capture, and the URL
and headers it is forwarded upstream with.

The destination comes from the connection, never from what the request says inside it:

* an intercepted CONNECT: its target (`host:port`), pinned to the connection by the front door;
* the TLS listener (host-alias, iptables): the SNI the certificate was chosen by;
* plain HTTP: the absolute-form request target, else the `Host` header (an iptables redirect of a
  plain provider port); origin-form plain HTTP addressed to the proxy itself is base-url capture,
  whose upstream is the provider the path names (`--upstream`, the catalog's defaults).

`x-llmsim-upstream` is honoured only in base-url capture, only when the profile sets
`allowUpstreamHeader`, and only towards a host the proxy intercepts; anywhere else it is refused
(`UpstreamRefused`), never followed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from llmsim import headers as llmsim_headers
from llmsim.api.profile import SimulationProfileSpec
from llmsim.providers import catalog
from llmsim.proxy.scope import Scope

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length", "expect",
    }
)  # fmt: skip
UPSTREAM_HEADER = "x-llmsim-upstream"
"""base-url capture, when the profile allows it: send this request to this base URL instead."""
DEFAULT_UPSTREAMS: dict[str, str] = catalog.default_upstreams()
"""Where base-url capture sends each provider's requests (azure and ollama must be configured)."""
_LOOPBACK_NAMES = frozenset({"localhost", "::1", "ip6-localhost"})

Address = tuple[str, int]


class UpstreamRefused(Exception):
    """`x-llmsim-upstream` cannot be honoured here (the message says why and names the header)."""


class Pins:
    """The destination of each intercepted CONNECT, by the connection's transport."""

    def __init__(self) -> None:
        self._by_transport: dict[object, Address] = {}

    def pin(self, transport: asyncio.BaseTransport, address: Address) -> None:
        self._by_transport[transport] = address

    def unpin(self, transport: asyncio.BaseTransport) -> None:
        self._by_transport.pop(transport, None)

    def get(self, transport: asyncio.BaseTransport | None) -> Address | None:
        return None if transport is None else self._by_transport.get(transport)

    def __len__(self) -> int:
        return len(self._by_transport)


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    base_url_capture: bool = False


def target(request: web.Request) -> str:
    """Path and query as the client sent them (absolute-form targets reduced to origin-form)."""
    return request.raw_path if not request.raw_path.startswith(("http://", "https://")) else request.path_qs


class Router:
    """Destinations and upstream URLs; `own_addresses` are the proxy's listeners (`host:port`)."""

    def __init__(
        self,
        upstreams: Mapping[str, str],
        own_addresses: frozenset[str] = frozenset(),
        pins: Pins | None = None,
    ) -> None:
        self.upstreams = dict(upstreams)
        self.own_addresses = own_addresses
        self.pins = pins if pins is not None else Pins()

    def destination(self, request: web.Request) -> Destination:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is not None:
            pinned = self.pins.get(transport)
            if pinned is not None:  # CONNECT: the target, whatever the Host header says
                return Destination("https", *pinned)
            host = getattr(ssl_object.context, "host", "")  # a `ca.LeafContext`
            if host:  # TLS listener: the name the certificate was chosen by
                return Destination("https", host, 443)
        secure = ssl_object is not None
        scheme = "https" if secure else "http"
        if not secure and request.raw_path.startswith(("http://", "https://")):
            url = request.url
            return Destination(
                url.scheme, (url.host or "").lower(), url.port or (443 if url.scheme == "https" else 80)
            )
        host_header = request.headers.get("Host", "")
        host, _, port_text = host_header.rpartition(":") if _has_port(host_header) else (host_header, "", "")
        port = int(port_text) if port_text.isdigit() else (443 if secure else 80)
        host = host.lower().strip("[]")
        if not secure and self._is_base_url(host, port):
            return Destination(scheme, host, port, base_url_capture=True)
        return Destination(scheme, host, port)

    def _is_base_url(self, host: str, port: int) -> bool:
        """Origin-form plain HTTP addressed to the proxy itself (base-url capture), as opposed to a
        request for another host that merely arrived here (e.g. redirected by iptables)."""
        if f"{host}:{port}" in self.own_addresses:
            return True
        return host in _LOOPBACK_NAMES or host.startswith("127.")

    def upstream_override(
        self, request: web.Request, dest: Destination, spec: SimulationProfileSpec, scope: Scope
    ) -> str | None:
        """The base URL `x-llmsim-upstream` asks for (None when absent); UpstreamRefused when it
        may not be honoured."""
        value = request.headers.get(UPSTREAM_HEADER)
        if value is None:
            return None
        if not dest.base_url_capture:
            raise UpstreamRefused(
                f"{UPSTREAM_HEADER} is honoured only in base-url capture; this request is addressed "
                f"to {dest.host}, and goes there"
            )
        if not spec.allow_upstream_header:
            raise UpstreamRefused(
                f"{UPSTREAM_HEADER} is not allowed by the profile (set allowUpstreamHeader: true)"
            )
        try:
            parts = urlsplit(value)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            parts, port = urlsplit(""), 0
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
            raise UpstreamRefused(f"{UPSTREAM_HEADER}: expected http(s)://host[:port][/prefix]")
        if not scope.intercepts(host, port):
            raise UpstreamRefused(
                f"{UPSTREAM_HEADER}: {host} is not a host the proxy intercepts "
                "(add it to the profile's interceptHosts)"
            )
        return value

    def upstream_url(
        self, request: web.Request, dest: Destination, provider: str, override: str | None = None
    ) -> str:
        """The URL to forward to; LookupError when base-url capture knows no upstream for `provider`."""
        if dest.base_url_capture:
            base = override or self.upstreams.get(provider)
            if not base:
                raise LookupError(
                    f"base-url capture: no upstream known for provider {provider!r}; "
                    f"set --upstream {provider}=URL"
                )
            return base.rstrip("/") + request.raw_path
        default_port = 443 if dest.scheme == "https" else 80
        netloc = dest.host if dest.port == default_port else f"{dest.host}:{dest.port}"
        return f"{dest.scheme}://{netloc}{target(request)}"


def upstream_headers(request_headers: Mapping[str, str]) -> CIMultiDict[str]:
    """Request headers as they go upstream: no hop-by-hop headers, no `x-llmsim-*`, no mode header."""
    out: CIMultiDict[str] = CIMultiDict()
    for key, value in request_headers.items():
        low = key.lower()
        if low in HOP_BY_HOP or low.startswith("x-llmsim-") or low == llmsim_headers.MODE:
            continue
        out.add(key, value)
    return out


def _has_port(host_header: str) -> bool:
    if host_header.startswith("["):
        return "]:" in host_header
    return host_header.count(":") == 1
