"""The TLS listener for host-alias and iptables capture (`--tls-listen`).

Each accepted connection's ClientHello is *peeked* (left in the kernel buffer), then:

* SNI in scope, or no SNI: TLS is terminated with a certificate from our CA (chosen by SNI) and the
  connection is served by the data path's aiohttp handler;
* any other SNI: the connection is relayed untouched to its original destination
  (`SO_ORIGINAL_DST` when iptables redirected it, else the SNI host on port 443), so the client
  sees that host's own certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from llmsim.proxy import clienthello
from llmsim.proxy.frontdoor import CONNECT_TIMEOUT_S, TLS_HANDSHAKE_TIMEOUT_S, _Pipe
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.state import ProxyState

log = logging.getLogger("llmsim.proxy")

SO_ORIGINAL_DST = 80
PEEK_TIMEOUT_S = 10.0

Address = tuple[str, int]


def original_destination(sock: socket.socket) -> Address | None:
    """Where an iptables-REDIRECTed IPv4 connection was going (None when it was not redirected)."""
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:
        return None
    port, packed = struct.unpack_from("!2xH4s", raw)
    dst = (socket.inet_ntoa(packed), int(port))
    return None if dst == sock.getsockname()[:2] else dst


class TlsListener:
    def __init__(
        self,
        state: ProxyState,
        http_protocol: Callable[[], asyncio.Protocol],
        sni_context: ssl.SSLContext,
        metrics: ProxyMetrics,
        tunnel_overrides: Mapping[str, Address] | None = None,
    ) -> None:
        self.state = state
        self.http_protocol = http_protocol
        self.sni_context = sni_context
        self.metrics = metrics
        self.tunnel_overrides = {k.lower(): v for k, v in (tunnel_overrides or {}).items()}
        self._sock: socket.socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> Address:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        self._sock = sock
        self._spawn(self._accept_loop(sock))
        bound = sock.getsockname()
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._sock is not None:
            self._sock.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(lsock)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(self._handle(conn))

    async def _peek_sni(self, conn: socket.socket) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PEEK_TIMEOUT_S
        while True:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _wake, readable)
            try:
                await asyncio.wait_for(readable, max(0.0, deadline - loop.time()))
            finally:
                loop.remove_reader(conn.fileno())
            data = conn.recv(clienthello.MAX_HELLO, socket.MSG_PEEK)
            if not data:
                raise ConnectionError("closed before the ClientHello")
            name = clienthello.server_name(data)
            if name != clienthello.NEED_MORE:
                return name
            if len(data) >= clienthello.MAX_HELLO:
                return None

    async def _handle(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            sni = await self._peek_sni(conn)
        except (clienthello.NotTls, ConnectionError, OSError, TimeoutError) as exc:
            log.debug("TLS listener: dropping a connection: %s", exc)
            conn.close()
            return
        try:
            if sni is None or self.state.scope.intercepts(sni, 443):
                await loop.connect_accepted_socket(
                    self.http_protocol,
                    conn,
                    ssl=self.sni_context,
                    ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S,
                )
            else:
                await self._relay(conn, sni)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("TLS listener: connection for %s failed: %s", sni or "<no SNI>", exc)
            with contextlib.suppress(OSError):
                conn.close()

    async def _relay(self, conn: socket.socket, sni: str) -> None:
        loop = asyncio.get_running_loop()
        dst = original_destination(conn) or self.tunnel_overrides.get(sni) or (sni, 443)
        # upstream first: the client transport must have its peer the moment it starts reading
        # (uvloop starts reading on creation; a pause issued before that is not honoured)
        outbound = _Pipe(None)
        try:
            upstream, _ = await asyncio.wait_for(
                loop.create_connection(lambda: outbound, dst[0], dst[1]), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            conn.close()
            raise
        try:
            client, _ = await loop.connect_accepted_socket(lambda: _Pipe(upstream), conn)
        except OSError:
            upstream.close()
            raise
        outbound.peer = client
        self.metrics.tunnels.inc()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
