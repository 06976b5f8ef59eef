"""One fault vocabulary: the same seed gives the same fault and the same bytes whether `llmsim serve`
simulates the answer or `llmsim proxy` perturbs real traffic, on a route the simulator knows and on
one it does not.

Requests carry a client request id (`x-request-id`), so both sides key their seeded decisions
(`unit(seed, "rid:<id>", attempt, rule)`) the same way; each id is a first attempt on both sides.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import yaml

from simserver import SimServer

from .conftest import ProxyFactory, client_ssl
from .fakes import Upstream

pytestmark = pytest.mark.slow

QUIET_LATENCY = {
    "ttftMs": {"type": "constant", "value": 0},
    "itlMs": {"type": "constant", "value": 0},
    "outputTokens": {"type": "constant", "value": 8},
}
SPEC: dict[str, Any] = {
    "seed": 11,
    "mode": "perturb",
    "latency": QUIET_LATENCY,
    # context_length is left out: its message quotes the prompt's size, which only a parsed request knows
    "faults": {"rates": {"rate_limit": 0.2, "quota": 0.1, "server_error": 0.15, "overloaded": 0.1}},
}
REQUESTS = 48
"""Enough that every rate above is met at least once (checked below), few enough to stay quick."""

ROUTES = {
    "openai": ("/v1/chat/completions", "/v1/gzip/chat/completions"),
    "anthropic": ("/v1/messages", "/v1/messages/batches"),
}
"""Per provider: a route the simulator knows, and one it does not (the fake upstream's own)."""
BODIES = {
    "openai": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    "anthropic": {
        "model": "claude-sonnet-4",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    },
}
CREDENTIALS = {
    "openai": {"authorization": "Bearer k"},
    "anthropic": {"x-api-key": "k", "anthropic-version": "2023-06-01"},
}
HOSTS = {"openai": "api.openai.com", "anthropic": "api.anthropic.com"}


REQUEST_ID = re.compile(rb'"request_id":"req_011[0-9a-f]+"')
"""Anthropic quotes the id llmsim assigned to each request in its errors: equal in shape, not in value."""


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str],
                **kw: Any) -> tuple[int, bytes]:  # fmt: skip
    async with session.post(url, json=body, headers=headers, **kw) as resp:
        return resp.status, REQUEST_ID.sub(b'"request_id":"req_011"', await resp.read())


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_serve_and_proxy_meet_the_same_faults_with_the_same_bytes(
    provider: str, proxy_factory: ProxyFactory, sim_server_factory: Any, upstream: Upstream
) -> None:
    serve: SimServer = sim_server_factory(SPEC)
    proxy = await proxy_factory(SPEC)
    assert proxy.listen_address is not None
    via_proxy = {"proxy": f"http://127.0.0.1:{proxy.listen_address[1]}", "ssl": client_ssl(proxy)}
    known, unknown = ROUTES[provider]
    outcomes: list[int] = []
    clean: set[str] = set()
    async with aiohttp.ClientSession() as session:
        for i in range(REQUESTS):
            for route, rid in ((known, f"known-{i}"), (unknown, f"off-{i}")):
                headers = {**CREDENTIALS[provider], "x-request-id": rid}
                simulated = await _post(session, serve.url + known, BODIES[provider], headers)
                proxied = await _post(
                    session, f"https://{HOSTS[provider]}{route}", BODIES[provider], headers, **via_proxy
                )
                outcomes.append(simulated[0])
                if simulated[0] == 200:
                    clean.add(rid)
                if simulated[0] != 200:
                    assert proxied == simulated, (route, i, proxied, simulated)
                elif route == known:
                    assert proxied[0] == 200 and b"upstream" in proxied[1], (
                        "a clean request reaches the upstream"
                    )
    statuses = set(outcomes)
    assert 200 in statuses and len(statuses - {200}) >= 3, statuses
    # status faults were answered without contacting the provider: only clean requests went upstream
    reached = {r["X-Request-ID"] for r in upstream.requests}
    assert reached <= clean and {rid for rid in clean if rid.startswith("known-")} <= reached


async def _last_event(session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str],
                      **kw: Any) -> tuple[int, bytes]:  # fmt: skip
    status, raw = await _post(session, url, {**body, "stream": True}, headers, **kw)
    events = [e for e in raw.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
    return status, events[-1] + b"\n\n"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_midstream_error_is_the_same_frame_from_serve_and_proxy(
    provider: str, proxy_factory: ProxyFactory, sim_server_factory: Any
) -> None:
    spec = {**SPEC, "faults": {"params": {"afterTokens": 3}}}
    serve: SimServer = sim_server_factory(spec)
    proxy = await proxy_factory(spec)
    assert proxy.listen_address is not None
    via_proxy = {"proxy": f"http://127.0.0.1:{proxy.listen_address[1]}", "ssl": client_ssl(proxy)}
    headers = {**CREDENTIALS[provider], "x-llmsim-fault": "midstream_error"}
    known = ROUTES[provider][0]
    async with aiohttp.ClientSession() as session:
        simulated = await _last_event(session, serve.url + known, BODIES[provider], headers)
        perturbed = await _last_event(
            session, f"https://{HOSTS[provider]}{known}", BODIES[provider], headers, **via_proxy
        )
    assert simulated[0] == perturbed[0] == 200
    assert perturbed[1] == simulated[1] and b"error" in simulated[1]


async def test_a_malformed_chunk_is_inserted_and_the_stream_goes_on(proxy_factory: ProxyFactory) -> None:
    """As in the simulator: the broken frame (the next event cut inside its JSON) goes in before
    that event, and the rest of the stream follows."""
    proxy = await proxy_factory({**SPEC, "faults": {"params": {"afterTokens": 3}}})
    assert proxy.listen_address is not None
    async with aiohttp.ClientSession() as session:
        status, raw = await _post(
            session, "https://api.openai.com/v1/chat/completions", {**BODIES["openai"], "stream": True},
            {**CREDENTIALS["openai"], "x-llmsim-fault": "malformed_chunk"},
            proxy=f"http://127.0.0.1:{proxy.listen_address[1]}", ssl=client_ssl(proxy),
        )  # fmt: skip
    events = [e for e in raw.split(b"\n\n") if e]
    assert status == 200 and raw.endswith(b"data: [DONE]\n\n")
    broken, following = events[3], events[4]
    assert following.startswith(broken[: len(broken) // 2]) and len(broken) < len(following)
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.removeprefix(b"data: "))


# -- the same, with both commands started the way users start them -------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], ready_url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmsim.cli.main", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(ready_url, timeout=0.5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(
                f"{args[0]} did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr:
        proc.stderr.close()


@pytest.fixture
def serve_and_proxy(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`llmsim serve`, and `llmsim proxy --mode perturb` (base-url capture) in front of a second
    `llmsim serve` as its upstream, all with the same profile file. (A second server, because the
    first one's attempt counters have already seen every request id.)"""
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(SPEC))
    started: list[subprocess.Popen[bytes]] = []
    try:
        ports = []
        for _ in range(2):
            port = _free_port()
            started.append(
                _start(
                    ["serve", "--profile", str(profile), "--port", str(port)],
                    f"http://127.0.0.1:{port}/readyz",
                )
            )
            ports.append(port)
        proxy_port, admin_port = _free_port(), _free_port()
        started.append(
            _start(
                ["proxy", "--profile", str(profile), "--mode", "perturb", "--listen", f"127.0.0.1:{proxy_port}",
                 "--admin", f"127.0.0.1:{admin_port}", "--ca-dir", str(tmp_path / "ca"),
                 "--upstream", f"openai=http://127.0.0.1:{ports[1]}"],
                f"http://127.0.0.1:{admin_port}/readyz",
            )
        )  # fmt: skip
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{proxy_port}"
    finally:
        for proc in reversed(started):
            _stop(proc)


def test_the_commands_agree_request_by_request(serve_and_proxy: tuple[str, str]) -> None:
    serve_url, proxy_url = serve_and_proxy
    ids = re.compile(rb'"(id|created)":"?[\w-]+"?')
    body = {**BODIES["openai"], "seed": 3}  # its own seed: the same content from both servers
    faults = 0
    with httpx.Client(timeout=20) as client:
        for i in range(REQUESTS):
            headers = {**CREDENTIALS["openai"], "x-request-id": f"cli-{i}"}
            simulated = client.post(serve_url + "/v1/chat/completions", json=body, headers=headers)
            perturbed = client.post(proxy_url + "/v1/chat/completions", json=body, headers=headers)
            assert perturbed.status_code == simulated.status_code, i
            assert ids.sub(b"", perturbed.content) == ids.sub(b"", simulated.content), i
            faults += simulated.status_code != 200
            headers["x-request-id"] = f"cli-off-{i}"  # a request id of its own: a first attempt again
            simulated = client.post(serve_url + "/v1/chat/completions", json=body, headers=headers)
            off_route = client.post(proxy_url + "/v1/unknown/chat/completions", json=body, headers=headers)
            if simulated.status_code == 200:
                assert off_route.status_code == 404, "clean: forwarded upstream, which has no such route"
            else:
                assert (off_route.status_code, off_route.content) == (
                    simulated.status_code,
                    simulated.content,
                ), i
    assert faults >= 3


async def test_windows_restart_when_the_proxy_installs_a_profile(proxy_factory: ProxyFactory) -> None:
    """A window counts from when its profile became active: for the proxy, a (re)load or resume."""
    proxy = await proxy_factory(SPEC)
    proxy.runtime.activated_at[proxy.state.profile.name] = asyncio.get_running_loop().time() - 1000.0
    proxy.state.resume()
    assert proxy.state.profile.name not in proxy.runtime.activated_at
