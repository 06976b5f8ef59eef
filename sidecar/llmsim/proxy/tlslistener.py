"""The TLS listener for host-alias and iptables capture (`--tls-listen`).

Each connection's ClientHello is read first and decides the route, before any handshake:

* SNI in scope, or no SNI: the bytes are relayed to an in-process TLS terminator on loopback
  (certificates from our CA, chosen by SNI), which serves the data path's aiohttp handler;
* any other SNI: the bytes are relayed untouched to the original destination (`SO_ORIGINAL_DST`
  when iptables redirected the connection, else the SNI host on port 443), so the client sees that
  host's own certificate.

Everything is plain asyncio protocols and transports (no socket objects handed between owners),
which behaves the same on asyncio and uvloop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

from llmsim.proxy import clienthello
from llmsim.proxy.frontdoor import (
    CONNECT_TIMEOUT_S,
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_TUNNEL_IDLE_S,
    _FirstRequest,
    _IdleTimer,
    _Pipe,
)
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.state import ProxyState

log = logging.getLogger("llmsim.proxy")

SO_ORIGINAL_DST = 80
IP6T_SO_ORIGINAL_DST = 80
"""The same option at the IPv6 level (linux/netfilter_ipv6/ip6_tables.h)."""

Address = tuple[str, int]


def original_destination(sock: Any) -> Address | None:
    """Where an iptables- or ip6tables-REDIRECTed connection was going (None when it was not
    redirected)."""
    if sock is None:
        return None
    try:
        own = sock.getsockname()[:2]
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(socket.IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, 28)
            port, packed = struct.unpack_from("!2xH4x16s", raw)
            dst = (socket.inet_ntop(socket.AF_INET6, packed), int(port))
        else:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, packed = struct.unpack_from("!2xH4s", raw)
            dst = (socket.inet_ntoa(packed), int(port))
    except OSError:
        return None
    return None if dst == tuple(own) else dst


class TlsListener:
    def __init__(
        self,
        state: ProxyState,
        http_protocol: Callable[[], asyncio.Protocol],
        sni_context: ssl.SSLContext,
        metrics: ProxyMetrics,
        tunnel_overrides: Mapping[str, Address] | None = None,
        head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S,
        tunnel_idle_s: float = DEFAULT_TUNNEL_IDLE_S,
    ) -> None:
        self.head_timeout_s = head_timeout_s
        self.tunnel_idle_s = tunnel_idle_s
        self.state = state
        self.http_protocol = http_protocol
        self.sni_context = sni_context
        self.metrics = metrics
        self.tunnel_overrides = {k.lower(): v for k, v in (tunnel_overrides or {}).items()}
        self._servers: list[asyncio.Server] = []
        self._terminator: Address = ("127.0.0.1", 0)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        internal = await loop.create_server(
            lambda: _FirstRequest(self.http_protocol(), self.head_timeout_s),
            "127.0.0.1", 0, ssl=self.sni_context, backlog=1024,
        )  # fmt: skip
        self._servers.append(internal)
        self._terminator = cast(Address, internal.sockets[0].getsockname()[:2])
        public = await loop.create_server(
            lambda: _HelloSniffer(self), host, port, reuse_address=True, backlog=1024
        )
        self._servers.append(public)
        bound = public.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def listen_also(self, host: str, port: int) -> Address:
        """Another public address (e.g. [::1] for ip6tables' redirects) in front of the same terminator."""
        loop = asyncio.get_running_loop()
        public = await loop.create_server(
            lambda: _HelloSniffer(self), host, port, reuse_address=True, backlog=1024
        )
        self._servers.append(public)
        bound = public.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            server.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def route(self, client: asyncio.Transport, sni: str | None, hello: bytes) -> None:
        loop = asyncio.get_running_loop()
        if sni is None or self.state.scope.intercepts(sni, 443):
            dst = self._terminator
        else:
            sock = client.get_extra_info("socket")
            dst = original_destination(sock) or self.tunnel_overrides.get(sni) or (sni, 443)
        try:
            upstream, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _Pipe(client), dst[0], dst[1]), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            log.info("TLS listener: cannot reach %s:%d for %s: %s", dst[0], dst[1], sni or "<no SNI>", exc)
            client.close()
            return
        if dst != self._terminator:
            self.metrics.tunnels.inc()
        upstream.write(hello)
        inbound = _Pipe(upstream)
        inbound.idle = _IdleTimer(self.tunnel_idle_s, client, upstream)
        cast(_Pipe, upstream.get_protocol()).idle = inbound.idle
        client.set_protocol(inbound)
        client.resume_reading()


class _HelloSniffer(asyncio.Protocol):
    """Buffers the ClientHello, then hands the connection to `TlsListener.route`."""

    def __init__(self, listener: TlsListener) -> None:
        self.listener = listener
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self._timer = asyncio.get_running_loop().call_later(
            self.listener.head_timeout_s, self.transport.close
        )

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        try:
            name = clienthello.server_name(self.buf)
        except clienthello.NotTls as exc:
            log.debug("TLS listener: dropping a connection: %s", exc)
            self.transport.close()
            return
        if name == clienthello.NEED_MORE and len(self.buf) < clienthello.MAX_HELLO:
            return
        if self._timer is not None:
            self._timer.cancel()
        self.transport.pause_reading()
        sni = None if name == clienthello.NEED_MORE else name
        self.listener.spawn(self.listener.route(self.transport, sni, self.buf))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
