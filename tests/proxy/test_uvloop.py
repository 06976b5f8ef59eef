"""The sidecar runs on uvloop (`llmsim proxy` installs it): the socket paths, under uvloop."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from llmsim.api.profile import Mode
from llmsim.proxy.runner import ProxyOptions, ProxyServer

from .conftest import QUIET, named
from .fakes import Pki, Upstream, start_upstream


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> bytes:
    writer.write(f"GET /plain HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return body


async def _scenario(pki: Pki, tmp: Path) -> None:
    upstream = Upstream()
    runner = await start_upstream(upstream, pki)
    resolve = {"origin.test": ("127.0.0.1", upstream.port), "api.openai.com": ("127.0.0.1", upstream.port)}
    options = ProxyOptions(
        listen=("127.0.0.1", 0), admin=None, ca_dir=tmp / "ca", tls_listen=("127.0.0.1", 0),
        resolve=resolve, upstream_ca=pki.ca_file, mode=Mode.PASSTHROUGH,
    )  # fmt: skip
    proxy = ProxyServer(options, named(QUIET))
    await proxy.start()
    assert proxy.listen_address is not None and proxy.tls_address is not None
    ours = ssl.create_default_context(cafile=str(proxy.ca.cert_path))
    theirs = ssl.create_default_context(cafile=str(pki.ca_file))
    try:
        for host, ctx, expect_ours in (("origin.test", theirs, False), ("api.openai.com", ours, True)):
            # CONNECT on the proxy port
            reader, writer = await asyncio.open_connection(*proxy.listen_address)
            writer.write(f"CONNECT {host}:443 HTTP/1.1\r\n\r\n".encode())
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            await asyncio.wait_for(writer.start_tls(ctx, server_hostname=host), 5)
            cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            assert (
                x509.load_der_x509_certificate(cert).fingerprint(hashes.SHA256()) != pki.leaf_fingerprint
            ) is (expect_ours)
            assert (await _get(reader, writer, host)).endswith(b"origin says hi")
            # the TLS listener (host-alias / iptables)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(*proxy.tls_address, ssl=ctx, server_hostname=host), 5
            )
            assert (await _get(reader, writer, host)).endswith(b"origin says hi")
    finally:
        await proxy.stop()
        await runner.cleanup()


@pytest.mark.slow
def test_tunnels_interception_and_the_tls_listener_work_under_uvloop(pki: Pki, tmp_path: Path) -> None:
    uvloop.run(asyncio.wait_for(_scenario(pki, tmp_path), 30))
