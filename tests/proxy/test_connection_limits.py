"""Bounded resources in the proxy (issue 18, item 7): a bounded LRU of per-host certificates with
nothing written per host to disk, and timeouts for connections that never send a request head,
intercepted CONNECTs that never send a request, and idle tunnels."""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from pathlib import Path

import pytest

from llmsim.proxy.ca import CertificateAuthority

from .conftest import ProxyFactory
from .fakes import Pki, Upstream


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory every `tempfile` call of this process uses during the test."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_certificate_cache_is_a_bounded_lru(tmp_path: Path, private_tmp: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca", max_contexts=3)
    first = ca.context_for("a.example")
    for host in ("b.example", "c.example"):
        ca.context_for(host)
    assert ca.context_for("a.example") is first  # a hit, and now the most recently used
    ca.context_for("d.example")
    assert ca.cached_hosts == ["c.example", "a.example", "d.example"]  # b was least recently used
    assert ca.context_for("b.example") is not None and len(ca.cached_hosts) == 3


@pytest.mark.parametrize("memfd", [True, False])
def test_no_per_host_file_or_descriptor_outlives_minting(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch, memfd: bool
) -> None:
    if not memfd:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    ca = CertificateAuthority(tmp_path / "ca", max_contexts=8)
    before_files = sorted(p.name for p in (tmp_path / "ca").iterdir())
    fds = _open_fds()
    for i in range(40):
        ctx = ca.context_for(f"h{i}.openai.azure.com")
        assert isinstance(ctx, ssl.SSLContext)
    assert list(private_tmp.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == before_files
    assert _open_fds() <= fds
    assert len(ca.cached_hosts) == 8


def test_a_context_loaded_from_memory_serves_a_handshake(tmp_path: Path, private_tmp: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    server = ca.context_for("api.openai.com")
    client = ssl.create_default_context(cafile=str(ca.cert_path))
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname="api.openai.com")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):  # a bounded handshake over memory
        for obj in (c, s):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    assert c.getpeercert()["subjectAltName"] == (("DNS", "api.openai.com"),)


async def _closed_within(reader: asyncio.StreamReader, limit_s: float) -> float:
    """Seconds until the proxy closes the connection (fails past `limit_s`)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        data = await asyncio.wait_for(reader.read(), limit_s)
    except ConnectionResetError:
        data = b""
    assert data == b"" or data.startswith(b"HTTP/1.1 200 Connection established"), data
    return loop.time() - start


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.op",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
    ],
    ids=["nothing", "partial-connect", "partial-plain-head"],
)
async def test_a_connection_that_never_completes_its_head_is_closed(
    proxy_factory: ProxyFactory, sent: bytes
) -> None:
    proxy = await proxy_factory(head_timeout_s=0.3)
    assert proxy.listen_address is not None
    reader, writer = await asyncio.open_connection(*proxy.listen_address)
    writer.write(sent)
    assert 0.25 <= await _closed_within(reader, 3.0) < 3.0
    writer.close()


async def test_an_intercepted_connect_that_sends_no_request_is_closed(proxy_factory: ProxyFactory) -> None:
    proxy = await proxy_factory(head_timeout_s=0.3)
    assert proxy.listen_address is not None
    reader, writer = await asyncio.open_connection(*proxy.listen_address)
    writer.write(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context(cafile=str(proxy.ca.cert_path))
    await asyncio.wait_for(writer.start_tls(ctx, server_hostname="api.openai.com"), 5)
    for _ in range(100):  # the server side finishes its handshake a moment after the client
        if len(proxy.pins) == 1:
            break
        await asyncio.sleep(0.01)
    assert len(proxy.pins) == 1
    writer.write(b"GET /v1/models HTTP/1.1\r\nHost: api.op")  # a head that never completes
    assert await _closed_within(reader, 3.0) < 3.0
    writer.close()
    await asyncio.sleep(0)
    assert len(proxy.pins) == 0  # the pin goes with the connection


async def test_the_tls_listener_closes_a_handshaken_connection_that_sends_nothing(
    proxy_factory: ProxyFactory,
) -> None:
    proxy = await proxy_factory(head_timeout_s=0.3, tls_listen=("127.0.0.1", 0))
    assert proxy.tls_address is not None
    ctx = ssl.create_default_context(cafile=str(proxy.ca.cert_path))
    reader, writer = await asyncio.open_connection(
        *proxy.tls_address, ssl=ctx, server_hostname="api.openai.com"
    )
    assert await _closed_within(reader, 3.0) < 3.0
    writer.close()


async def test_an_idle_tunnel_is_closed_and_a_busy_one_is_not(
    proxy_factory: ProxyFactory, pki: Pki, upstream: Upstream
) -> None:
    proxy = await proxy_factory(tunnel_idle_s=0.5)
    assert proxy.listen_address is not None
    reader, writer = await asyncio.open_connection(*proxy.listen_address)
    writer.write(b"CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    await asyncio.wait_for(writer.start_tls(ctx, server_hostname="origin.test"), 5)
    for _ in range(8):  # 1.6 s of traffic, never 0.5 s apart: the tunnel stays open
        writer.write(b"GET /plain HTTP/1.1\r\nHost: origin.test\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"origin says hi"), 3)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.2)
    assert await _closed_within(reader, 3.0) < 3.0  # then idle: closed
    writer.close()
    assert len(upstream.requests) == 8


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--head-timeout", "0", "--head-timeout: 0 must be a positive number of seconds"),
        ("--tunnel-idle-timeout", "-1", "--tunnel-idle-timeout: -1 must be a positive"),
        ("--drain", "0", "--drain: 0 must be a positive"),
        ("--leaf-cache-size", "0", "--leaf-cache-size: 0 must be at least 1"),
    ],
)
def test_bad_limits_are_one_line_errors(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmsim.cli.main import main

    assert main(["proxy", flag, value]) == 2
    assert message in capsys.readouterr().err
