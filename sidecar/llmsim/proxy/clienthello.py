"""The server name (SNI) in a TLS ClientHello, read without consuming it. Pure.

Used by the TLS listener (host-alias / iptables capture) to decide, before any handshake, whether a
connection is for an LLM host (terminate it) or for someone else (relay it untouched).
"""

from __future__ import annotations

from typing import Final

NEED_MORE: Final = "<need more bytes>"
"""`server_name()` result while the ClientHello is still incomplete."""
MAX_HELLO = 5 + 16384
"""A ClientHello we wait for fits in one TLS record."""


class NotTls(ValueError):
    """The bytes are not a TLS handshake record carrying a ClientHello."""


def server_name(data: bytes) -> str | None:
    """The SNI host name (lower-case), None when the ClientHello has none, or NEED_MORE.

    Raises NotTls for anything that is not a TLS ClientHello.
    """
    if len(data) < 5:
        return NEED_MORE
    if data[0] != 0x16 or data[1] != 0x03:
        raise NotTls("not a TLS handshake record")
    record_len = int.from_bytes(data[3:5], "big")
    if len(data) < 5 + record_len:
        return NEED_MORE
    body = data[5 : 5 + record_len]
    if len(body) < 4 or body[0] != 0x01:
        raise NotTls("the first handshake message is not a ClientHello")
    hello_len = int.from_bytes(body[1:4], "big")
    hello = body[4 : 4 + hello_len]
    if len(hello) < hello_len:
        return NEED_MORE  # spread over several records: give up waiting (caller treats as no SNI)
    try:
        return _sni(hello)
    except IndexError:
        raise NotTls("truncated ClientHello") from None


def _sni(hello: bytes) -> str | None:
    pos = 2 + 32  # client_version, random
    pos += 1 + hello[pos]  # session id
    pos += 2 + int.from_bytes(hello[pos : pos + 2], "big")  # cipher suites
    pos += 1 + hello[pos]  # compression methods
    if pos >= len(hello):
        return None  # no extensions
    end = pos + 2 + int.from_bytes(hello[pos : pos + 2], "big")
    pos += 2
    while pos + 4 <= end:
        ext_type = int.from_bytes(hello[pos : pos + 2], "big")
        ext_len = int.from_bytes(hello[pos + 2 : pos + 4], "big")
        ext = hello[pos + 4 : pos + 4 + ext_len]
        if ext_type == 0:  # server_name
            inner = 2
            while inner + 3 <= len(ext):
                name_type = ext[inner]
                name_len = int.from_bytes(ext[inner + 1 : inner + 3], "big")
                if name_type == 0:
                    return ext[inner + 3 : inner + 3 + name_len].decode("ascii", "replace").lower()
                inner += 3 + name_len
            return None
        pos += 4 + ext_len
    return None
