"""Fixtures: a TLS upstream playing the providers, and the proxy resolving provider hosts to it."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from llmsim import profiles
from llmsim.profiles import NamedProfile
from llmsim.proxy.runner import ProxyOptions, ProxyServer

from .fakes import Pki, Upstream, make_pki, start_upstream


def named(spec: dict[str, Any], name: str = "test") -> NamedProfile:
    return NamedProfile(name=name, spec=profiles.parse_spec(spec, name), source="test")


QUIET = {
    "seed": 3,
    "latency": {
        "ttftMs": {"type": "constant", "value": 0},
        "itlMs": {"type": "constant", "value": 0},
        "outputTokens": {"type": "constant", "value": 8},
    },
}
"""Adds nothing in perturb mode; a fast simulation in simulate mode."""


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def upstream(pki: Pki) -> AsyncIterator[Upstream]:
    up = Upstream()
    runner = await start_upstream(up, pki)
    yield up
    await runner.cleanup()


ProxyFactory = Callable[..., Awaitable[ProxyServer]]


@pytest.fixture
async def proxy_factory(upstream: Upstream, pki: Pki, tmp_path: Path) -> AsyncIterator[ProxyFactory]:
    """Start proxies whose upstream for api.openai.com / api.anthropic.com is the fake provider."""
    started: list[ProxyServer] = []

    async def start(
        spec: dict[str, Any] | None = None, profile_file: Path | None = None, **options: Any
    ) -> ProxyServer:
        options.setdefault("watch_interval_s", 3600.0)  # tests drive `server.watcher.check()` themselves
        options.setdefault(
            "resolve",
            {h: ("127.0.0.1", upstream.port) for h in ("api.openai.com", "api.anthropic.com", "origin.test")},
        )
        opts = ProxyOptions(
            profile=str(profile_file) if profile_file else None,
            listen=("127.0.0.1", 0),
            admin=("127.0.0.1", 0),
            ca_dir=tmp_path / "ca",
            upstream_ca=pki.ca_file,
            **options,
        )
        server = ProxyServer(opts, None if profile_file else named(spec if spec is not None else QUIET))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


CLIENT_SCRIPT = r"""
import json, sys, time
import openai, anthropic

results = {}
oa = openai.OpenAI(api_key="sk-test-secret", max_retries=0, timeout=20)
r = oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
results["openai"] = r.choices[0].message.content
t0 = time.monotonic(); parts = []; stamps = []
for chunk in oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content); stamps.append(time.monotonic() - t0)
results["openai_stream"] = "".join(parts)
results["openai_stream_times"] = stamps
an = anthropic.Anthropic(api_key="sk-ant-secret", max_retries=0, timeout=20)
m = an.messages.create(model="claude-sonnet-4", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
results["anthropic"] = "".join(b.text for b in m.content if b.type == "text")
with an.messages.stream(model="claude-sonnet-4", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
    results["anthropic_stream"] = "".join(s.text_stream)
print(json.dumps(results))
"""


async def run_sdk_clients(proxy: ProxyServer, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the official SDKs in a subprocess configured only through proxy and CA-trust variables."""
    assert proxy.listen_address is not None
    env = {
        k: v
        for k, v in os.environ.items()
        if "proxy" not in k.lower() and not k.startswith(("OPENAI", "ANTHROPIC"))
    }
    env.update(
        HTTPS_PROXY=f"http://127.0.0.1:{proxy.listen_address[1]}",
        SSL_CERT_FILE=str(proxy.ca.bundle_path),
        REQUESTS_CA_BUNDLE=str(proxy.ca.bundle_path),
        NO_PROXY="",
    )
    env.update(extra_env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT_SCRIPT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


def client_ssl(proxy: ProxyServer) -> ssl.SSLContext:
    """What a client that trusts our CA uses."""
    return ssl.create_default_context(cafile=str(proxy.ca.cert_path))


async def timed_stream(
    proxy: ProxyServer, path: str = "/v1/chat/completions", headers: dict[str, str] | None = None
) -> tuple[int, float, list[float], bytes]:
    """POST a streaming chat request through the proxy (HTTPS via CONNECT); return (status, request
    start, arrival loop-times of each SSE event, whole body)."""
    assert proxy.listen_address is not None
    loop = asyncio.get_running_loop()
    body = b""
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        start = loop.time()
        async with session.post(
            f"https://api.openai.com{path}",
            json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            headers=headers or {},
            proxy=f"http://127.0.0.1:{proxy.listen_address[1]}",
            ssl=client_ssl(proxy),
        ) as resp:
            status = resp.status
            try:
                async for chunk in resp.content.iter_any():
                    now = loop.time()
                    events = (body + chunk).count(b"\n\n") - body.count(b"\n\n")
                    times.extend([now] * events)
                    body += chunk
            except aiohttp.ClientPayloadError:
                times.append(-1.0)  # marks a cut connection
    return status, start, times, body
