from __future__ import annotations

import ssl

import pytest

from llmsim.proxy.clienthello import NEED_MORE, NotTls, server_name


def client_hello(host: str | None) -> bytes:
    """A real ClientHello from Python's ssl module."""
    ctx = ssl.create_default_context()
    if host is None:
        ctx.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_server_name_is_read_from_a_real_client_hello() -> None:
    assert server_name(client_hello("API.OpenAI.com")) == "api.openai.com"
    assert server_name(client_hello(None)) is None


def test_partial_hellos_ask_for_more() -> None:
    hello = client_hello("api.anthropic.com")
    for cut in (0, 3, 5, 40, len(hello) - 1):
        assert server_name(hello[:cut]) == NEED_MORE
    assert server_name(hello + b"trailing") == "api.anthropic.com"


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x16\x03\x01\x00\x04\x02\x00\x00\x00"])
def test_other_bytes_are_not_tls(data: bytes) -> None:
    with pytest.raises(NotTls):
        server_name(data)
