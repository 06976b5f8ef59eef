"""Where an intercepted request goes: its destination, whether it is base-url capture, and the URL
and headers it is forwarded upstream with.

The destination comes from the connection (TLS or not), an absolute-form request target, or the
`Host` header; origin-form plain HTTP addressed to the proxy itself is base-url capture, whose
upstream is the provider the path names (`--upstream`, the catalog's defaults) or the
`x-llmsim-upstream` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from llmsim import headers as llmsim_headers
from llmsim.providers import catalog

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length", "expect",
    }
)  # fmt: skip
UPSTREAM_HEADER = "x-llmsim-upstream"
"""base-url capture: send this request to this base URL instead of the provider's default."""
DEFAULT_UPSTREAMS: dict[str, str] = catalog.default_upstreams()
"""Where base-url capture sends each provider's requests (azure and ollama must be configured)."""
_LOOPBACK_NAMES = frozenset({"localhost", "::1", "ip6-localhost"})


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

    def __init__(self, upstreams: Mapping[str, str], own_addresses: frozenset[str] = frozenset()) -> None:
        self.upstreams = dict(upstreams)
        self.own_addresses = own_addresses

    def destination(self, request: web.Request) -> Destination:
        secure = request.transport is not None and request.transport.get_extra_info("sslcontext") is not None
        scheme = "https" if secure else "http"
        if request.raw_path.startswith(("http://", "https://")):
            url = request.url
            return Destination(
                url.scheme, (url.host or "").lower(), url.port or (443 if url.scheme == "https" else 80)
            )
        host_header = request.headers.get("Host", "")
        host, _, port_text = host_header.rpartition(":") if _has_port(host_header) else (host_header, "", "")
        port = int(port_text) if port_text.isdigit() else (443 if secure else 80)
        host = host.lower().strip("[]")
        if not secure and self._is_base_url(request, host, port):
            return Destination(scheme, host, port, base_url_capture=True)
        return Destination(scheme, host, port)

    def _is_base_url(self, request: web.Request, host: str, port: int) -> bool:
        """Origin-form plain HTTP addressed to the proxy itself (base-url capture), as opposed to a
        request for another host that merely arrived here (e.g. redirected by iptables)."""
        if request.headers.get(UPSTREAM_HEADER):
            return True
        if f"{host}:{port}" in self.own_addresses:
            return True
        return host in _LOOPBACK_NAMES or host.startswith("127.")

    def upstream_url(self, request: web.Request, dest: Destination, provider: str) -> str:
        """The URL to forward to; LookupError when base-url capture knows no upstream for `provider`."""
        if dest.base_url_capture:
            base = request.headers.get(UPSTREAM_HEADER) or self.upstreams.get(provider)
            if not base:
                raise LookupError(
                    f"base-url capture: no upstream known for provider {provider!r}; "
                    f"set --upstream {provider}=URL or the {UPSTREAM_HEADER} header"
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
