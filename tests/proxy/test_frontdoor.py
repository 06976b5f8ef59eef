"""The front door: LLM hosts get our certificate, every other host its own (tunnelled untouched)."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from llmsim.proxy.frontdoor import parse_authority

from .conftest import ProxyFactory
from .fakes import Pki, Upstream


async def _tls_via_connect(
    port: int, target: str, cafile: str, path: str = "/plain"
) -> tuple[x509.Certificate, bytes]:
    host = target.split(":")[0]
    authority = target if ":" in target else f"{target}:443"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200"), head
    await asyncio.wait_for(
        writer.start_tls(ssl.create_default_context(cafile=cafile), server_hostname=host), 5
    )
    sslobj = writer.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n".encode()
    )
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return x509.load_der_x509_certificate(der), body


async def test_a_non_llm_host_presents_its_own_certificate(
    proxy_factory: ProxyFactory, pki: Pki, upstream: Upstream
) -> None:
    proxy = await proxy_factory()
    assert proxy.listen_address is not None
    cert, body = await _tls_via_connect(proxy.listen_address[1], "origin.test", str(pki.ca_file))
    assert cert.fingerprint(hashes.SHA256()) == pki.leaf_fingerprint
    assert body.endswith(b"origin says hi")
    assert proxy.metrics.tunnels._value.get() == 1


async def test_an_llm_host_gets_a_certificate_from_our_ca(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory(mode=None)
    assert proxy.listen_address is not None
    cert, _ = await _tls_via_connect(proxy.listen_address[1], "api.openai.com", str(proxy.ca.cert_path))
    issuer = cert.issuer.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert issuer == "llmsim"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "api.openai.com" in sans.get_values_for_type(x509.DNSName)


async def test_profile_intercept_hosts_extend_the_scope(proxy_factory: ProxyFactory, pki: Pki) -> None:
    proxy = await proxy_factory({"interceptHosts": ["origin.test"], "mode": "passthrough"})
    assert proxy.listen_address is not None
    cert, body = await _tls_via_connect(proxy.listen_address[1], "origin.test", str(proxy.ca.cert_path))
    assert cert.fingerprint(hashes.SHA256()) != pki.leaf_fingerprint
    assert body.endswith(b"origin says hi")  # passthrough re-encrypts to the real origin


async def test_host_alias_listener_terminates_tls_by_sni(proxy_factory: ProxyFactory) -> None:
    proxy = await proxy_factory(tls_listen=("127.0.0.1", 0))
    assert proxy.tls_address is not None
    ctx = ssl.create_default_context(cafile=str(proxy.ca.cert_path))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", proxy.tls_address[1], ssl=ctx, server_hostname="api.anthropic.com"
    )
    body = b'{"model":"claude-sonnet-4","max_tokens":5,"messages":[{"role":"user","content":"x"}]}'
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Type: application/json\r\n"
        b"x-api-key: k\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    assert b'"type":"message"' in response.replace(b" ", b"")


async def _tls_direct(port: int, sni: str, cafile: str) -> tuple[x509.Certificate, bytes]:
    ctx = ssl.create_default_context(cafile=cafile)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=sni)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.write(f"GET /plain HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return x509.load_der_x509_certificate(der), body


async def test_the_tls_listener_relays_hosts_outside_the_scope_untouched(
    proxy_factory: ProxyFactory, pki: Pki, upstream: Upstream
) -> None:
    # as with an iptables redirect: every 443 connection arrives, the SNI decides
    proxy = await proxy_factory(tls_listen=("127.0.0.1", 0))
    assert proxy.tls_address is not None
    cert, body = await _tls_direct(proxy.tls_address[1], "origin.test", str(pki.ca_file))
    assert cert.fingerprint(hashes.SHA256()) == pki.leaf_fingerprint and body.endswith(b"origin says hi")
    cert, _ = await _tls_direct(proxy.tls_address[1], "api.openai.com", str(proxy.ca.cert_path))
    assert cert.issuer.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == "llmsim"


async def test_the_tls_listener_drops_what_is_not_tls(proxy_factory: ProxyFactory) -> None:
    proxy = await proxy_factory(tls_listen=("127.0.0.1", 0))
    assert proxy.tls_address is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.tls_address[1])
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        pass  # closed with our request unread: the kernel answers with a reset
    writer.close()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("api.openai.com:443", ("api.openai.com", 443)),
        ("[::1]:8443", ("::1", 8443)),
        ("Host:80", ("host", 80)),
    ],
)
def test_connect_targets_parse(target: str, expected: tuple[str, int]) -> None:
    assert parse_authority(target) == expected


@pytest.mark.parametrize("target", ["api.openai.com", "a:0", "a:70000", ":443", "a:b"])
def test_bad_connect_targets_are_rejected(target: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_authority(target)
