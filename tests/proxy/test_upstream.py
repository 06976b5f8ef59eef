"""Upstream resolution: pinned hosts, and DNS that skips /etc/hosts for host-alias capture."""

from __future__ import annotations

import socket

from llmsim.proxy.upstream import UpstreamResolver


class FakeDns:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def lookup_ip(self, host: str) -> list[str]:
        self.asked.append(host)
        return ["203.0.113.9", "2001:db8::9"]


async def test_pinned_hosts_win_and_keep_their_port() -> None:
    resolver = UpstreamResolver({"API.OpenAI.com": ("127.0.0.1", 8443)})
    [found] = await resolver.resolve("api.openai.com", 443)
    assert (found["host"], found["port"], found["family"]) == ("127.0.0.1", 8443, socket.AF_INET)
    await resolver.close()


async def test_bypassing_the_hosts_file_asks_dns_instead_of_etc_hosts() -> None:
    resolver = UpstreamResolver(bypass_hosts_file=True)
    fake = FakeDns()
    resolver._dns = fake
    # "localhost" would come from /etc/hosts; with the bypass the DNS resolver is asked instead
    found = await resolver.resolve("localhost", 443)
    assert fake.asked == ["localhost"]
    assert [(r["host"], r["port"], r["family"]) for r in found] == [
        ("203.0.113.9", 443, socket.AF_INET),
        ("2001:db8::9", 443, socket.AF_INET6),
    ]
    await resolver.close()


async def test_without_the_bypass_the_system_resolver_answers() -> None:
    resolver = UpstreamResolver()
    found = await resolver.resolve("localhost", 80)
    assert any(r["host"] in ("127.0.0.1", "::1") for r in found)
    await resolver.close()
