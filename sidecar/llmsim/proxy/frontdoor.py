"""The proxy's listening socket: CONNECT handling, TLS termination for LLM hosts, raw tunnels for
everything else. Plain asyncio protocols, so non-LLM bytes and decrypted LLM requests never pass
through a Python HTTP engine on the way: intercepted connections are handed, after the TLS
handshake, straight to the aiohttp request handler of the in-process data path.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, cast

from llmsim.proxy.ca import CertificateAuthority
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.redact import redact_text
from llmsim.proxy.state import ProxyState

log = logging.getLogger("llmsim.proxy")

MAX_HEAD = 64 * 1024
TLS_HANDSHAKE_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 15.0

ProtocolFactory = Callable[[], asyncio.Protocol]


def parse_authority(target: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) of a CONNECT request; ValueError when malformed."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = target.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"CONNECT target {target!r} is not host:port")
    return host.lower(), int(port_text)


class FrontDoor:
    """Owns the decisions taken per connection; `protocol()` is the listening socket's factory."""

    def __init__(
        self,
        state: ProxyState,
        ca: CertificateAuthority,
        http_protocol: ProtocolFactory,
        metrics: ProxyMetrics,
        tunnel_overrides: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        self.state = state
        self.ca = ca
        self.http_protocol = http_protocol
        self.metrics = metrics
        self.tunnel_overrides = {k.lower(): v for k, v in (tunnel_overrides or {}).items()}
        self._tasks: set[asyncio.Task[None]] = set()

    def protocol(self) -> asyncio.Protocol:
        return _Sniffer(self)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def hand_to_http(self, transport: asyncio.BaseTransport, initial: bytes = b"") -> None:
        """Give a plain connection (with bytes already read) to the aiohttp request handler."""
        proto = self.http_protocol()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if initial:
            proto.data_received(initial)

    async def connect(self, transport: asyncio.Transport, target: str, rest: bytes) -> None:
        try:
            host, port = parse_authority(target)
        except ValueError as exc:
            transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            transport.close()
            log.debug("%s", exc)
            return
        if self.state.scope.intercepts(host, port):
            await self._intercept(transport, host, rest)
        else:
            await self._tunnel(transport, host, port, rest)

    async def _intercept(self, transport: asyncio.Transport, host: str, rest: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            ctx = self.ca.context_for(host)
        except Exception:
            log.exception("cannot mint a certificate for %s", host)
            transport.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            transport.close()
            return
        transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            log.debug("dropping %d bytes sent before the CONNECT answer", len(rest))
        proto = self.http_protocol()
        try:
            tls = await loop.start_tls(
                transport, proto, ctx, server_side=True, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            log.info("TLS handshake with the client for %s failed (does it trust our CA?): %s", host, exc)
            transport.abort()
            return
        if tls is None:  # pragma: no cover - only when the transport closed meanwhile
            return
        proto.connection_made(tls)

    async def _tunnel(self, transport: asyncio.Transport, host: str, port: int, rest: bytes) -> None:
        loop = asyncio.get_running_loop()
        addr = self.tunnel_overrides.get(host, (host, port))
        inbound = _Pipe(transport)
        try:
            upstream, _outbound = await asyncio.wait_for(
                loop.create_connection(lambda: _Pipe(transport), addr[0], addr[1]), CONNECT_TIMEOUT_S
            )
        except (TimeoutError, OSError) as exc:
            log.info("tunnel to %s:%d failed: %s", host, port, redact_text(str(exc)))
            transport.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            transport.close()
            return
        self.metrics.tunnels.inc()
        inbound.peer = upstream
        transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.write(rest)
        transport.set_protocol(inbound)
        transport.resume_reading()


class _Sniffer(asyncio.Protocol):
    """Reads the first request head: CONNECT goes to the front door, anything else to aiohttp."""

    def __init__(self, door: FrontDoor) -> None:
        self.door = door
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if not self.buf[:8].upper().startswith(b"CONNECT "[: len(self.buf[:8])]):
            buf, self.buf = self.buf, b""
            self.door.hand_to_http(self.transport, buf)
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self.transport.close()
            return
        head, rest = self.buf[:end], self.buf[end + 4 :]
        self.buf = b""
        parts = head.split(b"\r\n", 1)[0].split()
        target = parts[1].decode("ascii", "replace") if len(parts) >= 2 else ""
        self.transport.pause_reading()
        self.door.spawn(self.door.connect(self.transport, target, rest))


class _Pipe(asyncio.Protocol):
    """One direction of a raw tunnel: what arrives here is written to `peer`, with back-pressure."""

    def __init__(self, peer: asyncio.Transport | None) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.write(data)

    def eof_received(self) -> bool:
        if self.peer is not None and self.peer.can_write_eof():
            self.peer.write_eof()
            return True
        return False

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()
