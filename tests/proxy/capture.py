"""One raw HTTP/1.1 request through the proxy in each capture mode it has, as an app would send it.

* `proxy`: `CONNECT host:443`, TLS with our CA, then the request (HTTPS_PROXY);
* `base-url`: plain HTTP, origin-form, addressed to the proxy's own listener;
* `host-alias`: TLS straight to `--tls-listen`, the provider's name in SNI (iptables capture of 443
  arrives the same way: the listener reads the SNI, the original destination only matters for
  hosts outside the scope);
* `iptables-plain`: plain HTTP to `--listen` carrying the provider's `Host` (an iptables redirect
  of a plain provider port).
"""

from __future__ import annotations

import asyncio
import ssl

from llmsim.proxy.runner import ProxyServer

CAPTURE_MODES = ("proxy", "base-url", "host-alias", "iptables-plain")


async def send(
    proxy: ProxyServer,
    mode: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    host: str = "api.openai.com",
    timeout_s: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased response headers, body) of one request sent with `Connection: close`."""
    assert proxy.listen_address is not None
    port = proxy.listen_address[1]
    ctx = ssl.create_default_context(cafile=str(proxy.ca.cert_path))
    if mode == "proxy":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
        assert head.startswith(b"HTTP/1.1 200"), head
        await asyncio.wait_for(writer.start_tls(ctx, server_hostname=host), timeout_s)
        host_header = host
    elif mode == "base-url":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        host_header = f"127.0.0.1:{port}"
    elif mode == "host-alias":
        assert proxy.tls_address is not None, "start the proxy with tls_listen"
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", proxy.tls_address[1], ssl=ctx, server_hostname=host
        )
        host_header = host
    elif mode == "iptables-plain":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        host_header = host
    else:  # pragma: no cover - a typo in a test
        raise ValueError(mode)
    extra = dict(headers or {})
    host_header = extra.pop("Host", host_header)  # a test may send another Host than the target
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    try:
        raw = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed[key.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding") == "chunked":
        rest = _dechunk(rest)
    return int(status_line.split()[1]), parsed, rest


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out
