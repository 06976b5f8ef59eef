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
from llmsim.proxy.routing import Pins
from llmsim.proxy.state import ProxyState

log = logging.getLogger("llmsim.proxy")

MAX_HEAD = 64 * 1024
TLS_HANDSHAKE_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 15.0
DEFAULT_HEAD_TIMEOUT_S = 10.0
"""A new connection's first request head (a CONNECT or a plain request), and an intercepted
CONNECT's first request head after the TLS handshake, must be complete within this long."""
DEFAULT_TUNNEL_IDLE_S = 600.0
"""A raw tunnel with no byte in either direction for this long is closed."""

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
        pins: Pins | None = None,
        head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S,
        tunnel_idle_s: float = DEFAULT_TUNNEL_IDLE_S,
    ) -> None:
        self.pins = pins if pins is not None else Pins()
        """Where each intercepted CONNECT goes (read by the data path's router)."""
        self.head_timeout_s = head_timeout_s
        self.tunnel_idle_s = tunnel_idle_s
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
            await self._intercept(transport, host, port, rest)
        else:
            await self._tunnel(transport, host, port, rest)

    async def _intercept(self, transport: asyncio.Transport, host: str, port: int, rest: bytes) -> None:
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
        proto = _Pinned(self.http_protocol(), self.pins, (host, port), self.head_timeout_s)
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
        idle = _IdleTimer(self.tunnel_idle_s, transport, upstream)
        inbound.idle = idle
        _outbound.idle = idle
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
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self._timer = asyncio.get_running_loop().call_later(self.door.head_timeout_s, self._expire)

    def _expire(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            log.debug(
                "closing a connection that sent no complete request head in %g s", self.door.head_timeout_s
            )
            self.transport.abort()

    def _done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if not self.buf[:8].upper().startswith(b"CONNECT "[: len(self.buf[:8])]):
            if b"\r\n\r\n" not in self.buf and len(self.buf) <= MAX_HEAD:
                return  # a plain request's head, too, must be complete within the head timeout
            self._done()  # aiohttp's own limits and keep-alive timeout take over
            buf, self.buf = self.buf, b""
            self.door.hand_to_http(self.transport, buf)
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self.transport.close()
            return
        self._done()
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
        self.idle: _IdleTimer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.idle is not None:
            self.idle.touch()
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
        if self.idle is not None:
            self.idle.cancel()
        if self.peer is not None:
            self.peer.close()


class _IdleTimer:
    """Closes both ends of a tunnel when no byte has passed either way for `limit_s`."""

    def __init__(self, limit_s: float, *transports: asyncio.BaseTransport) -> None:
        self.limit_s = limit_s
        self.transports = transports
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()
        self._handle: asyncio.TimerHandle | None = self.loop.call_later(limit_s, self._check)

    def touch(self) -> None:
        self.last = self.loop.time()

    def _check(self) -> None:
        due = self.last + self.limit_s
        if self.loop.time() < due:
            self._handle = self.loop.call_at(due, self._check)
            return
        self._handle = None
        log.debug("closing a tunnel idle for %g s", self.limit_s)
        for transport in self.transports:
            transport.close()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class _FirstRequest(asyncio.Protocol):
    """A decrypted connection handed to aiohttp's request handler (`inner`), closed unless its
    first request head is complete within `head_timeout_s` (after that aiohttp's keep-alive
    timeout rules)."""

    def __init__(self, inner: asyncio.Protocol, head_timeout_s: float) -> None:
        self.inner = inner
        self.head_timeout_s = head_timeout_s
        self.transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._seen = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._timer = asyncio.get_running_loop().call_later(self.head_timeout_s, self._expire)
        self.inner.connection_made(transport)

    def _expire(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            log.debug("closing a TLS connection that sent no request in %g s", self.head_timeout_s)
            cast(asyncio.Transport, self.transport).abort()

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            self._seen = (self._seen + data)[-MAX_HEAD:]
            if b"\r\n\r\n" in self._seen or len(self._seen) >= MAX_HEAD:  # the first head is complete
                self._timer.cancel()
                self._timer = None
                self._seen = b""
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.inner.connection_lost(exc)


class _Pinned(_FirstRequest):
    """An intercepted CONNECT's decrypted connection, its target pinned to it: the inner `Host`
    header cannot pick another destination."""

    def __init__(
        self, inner: asyncio.Protocol, pins: Pins, address: tuple[str, int], head_timeout_s: float
    ) -> None:
        super().__init__(inner, head_timeout_s)
        self.pins = pins
        self.address = address

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pins.pin(transport, self.address)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.pins.unpin(self.transport)
        super().connection_lost(exc)
