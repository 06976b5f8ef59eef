"""Connections to the real providers (perturb and passthrough): an aiohttp client session with a
resolver that can skip /etc/hosts (host-alias capture points provider names at 127.0.0.1) and a
test-only host override."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver


class UpstreamResolver(AbstractResolver):
    """Resolves upstream hosts.

    * `overrides` (`host -> (ip, port)`) wins: used by tests to play a provider on 127.0.0.1, and
      usable to pin a provider to an address.
    * `bypass_hosts_file`: ask DNS directly (mitmproxy_rs resolver) instead of /etc/hosts, because
      with host-alias capture /etc/hosts sends the provider's name back to ourselves.
    """

    def __init__(
        self, overrides: Mapping[str, tuple[str, int]] | None = None, bypass_hosts_file: bool = False
    ) -> None:
        self.overrides = {k.lower(): v for k, v in (overrides or {}).items()}
        self.bypass_hosts_file = bypass_hosts_file
        self._threaded = ThreadedResolver()
        self._dns: object | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pinned = self.overrides.get(host.lower())
        if pinned is not None:
            ip, pinned_port = pinned
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [ResolveResult(hostname=host, host=ip, port=pinned_port, family=fam, proto=0, flags=0)]
        if self.bypass_hosts_file:
            import mitmproxy_rs

            if self._dns is None:
                self._dns = mitmproxy_rs.dns.DnsResolver(use_hosts_file=False)
            ips: list[str] = await self._dns.lookup_ip(host)  # type: ignore[attr-defined]
            return [
                ResolveResult(
                    hostname=host,
                    host=ip,
                    port=port,
                    family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    proto=0,
                    flags=0,
                )
                for ip in ips
            ]
        return await self._threaded.resolve(host, port, family)

    async def close(self) -> None:
        await self._threaded.close()


def client_ssl_context(extra_ca: Path | None = None) -> ssl.SSLContext:
    """Verify upstream certificates against the system store (plus `extra_ca`, e.g. a test CA)."""
    ctx = ssl.create_default_context()
    if extra_ca is not None:
        ctx.load_verify_locations(cafile=str(extra_ca))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def new_session(resolver: UpstreamResolver, ssl_context: ssl.SSLContext) -> aiohttp.ClientSession:
    """One shared session: no connection limit, no total timeout (streams are long), raw bodies."""
    connector = aiohttp.TCPConnector(
        limit=0, resolver=resolver, ssl=ssl_context, ttl_dns_cache=30, enable_cleanup_closed=False
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
