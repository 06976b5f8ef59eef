"""The official SDKs, configured only by HTTPS_PROXY and CA trust variables, in every mode."""

from __future__ import annotations

import pytest

from llmsim.api.profile import Mode
from llmsim.proxy.runner import ProxyServer

from .conftest import QUIET, ProxyFactory, run_sdk_clients
from .fakes import Upstream

pytestmark = pytest.mark.slow

UPSTREAM_STREAM = "".join(f"t{i} " for i in range(10))


@pytest.mark.parametrize("mode", [Mode.PASSTHROUGH, Mode.PERTURB])
async def test_forwarding_modes_reach_the_upstream(
    proxy_factory: ProxyFactory, upstream: Upstream, mode: Mode
) -> None:
    proxy = await proxy_factory(mode=mode)
    result = await run_sdk_clients(proxy)
    assert result["openai"] == "upstream says hi"
    assert result["anthropic"] == "upstream says hi"
    assert result["openai_stream"] == UPSTREAM_STREAM
    assert result["anthropic_stream"] == UPSTREAM_STREAM
    assert len(upstream.requests) == 4
    # credentials go upstream untouched; nothing of ours does
    assert upstream.requests[0]["Authorization"] == "Bearer sk-test-secret"
    assert not any(k.lower().startswith("x-llmsim-") for r in upstream.requests for k in r)
    # measured timings land in the same telemetry as simulated requests, labelled with the mode
    _, text = await _admin_metrics(proxy)
    assert _sample(text, "llmsim_ttft_seconds_count", mode=mode.value, provider="openai") == 2
    assert _sample(text, "llmsim_requests_total", mode=mode.value, outcome="ok") == 4
    assert _sample(text, "llmsim_itl_seconds_count", mode=mode.value, provider="anthropic") > 0


def _sample(text: str, name: str, **match: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    )


async def test_simulate_answers_without_any_upstream(proxy_factory: ProxyFactory, upstream: Upstream) -> None:
    proxy = await proxy_factory(mode=Mode.SIMULATE)
    result = await run_sdk_clients(proxy)
    for key in ("openai", "openai_stream", "anthropic", "anthropic_stream"):
        assert result[key], key
        assert "upstream" not in result[key] and result[key] != UPSTREAM_STREAM
    assert upstream.requests == []


async def test_mode_header_overrides_per_request(proxy_factory: ProxyFactory, upstream: Upstream) -> None:
    import aiohttp

    proxy = await proxy_factory(mode=Mode.SIMULATE)
    assert proxy.listen_address is not None
    port = proxy.listen_address[1]
    # plain HTTP via the proxy port, origin-form: base-url capture; the mode header asks for passthrough
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-simulation-mode": "passthrough", "x-llmsim-seed": "1", "Authorization": "Bearer k"},
        ) as resp:
            assert resp.status == 200
            doc = await resp.json()
        assert doc["choices"][0]["message"]["content"] == "upstream says hi"
        assert "x-llmsim-seed" not in {k.lower() for k in upstream.requests[-1]}
        assert "x-simulation-mode" not in {k.lower() for k in upstream.requests[-1]}
        async with session.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-simulation-mode": "bogus"},
        ) as resp:
            assert resp.status == 400
            assert "x-simulation-mode" in (await resp.json())["error"]["message"]
    assert len(upstream.requests) == 1


async def _admin_metrics(proxy: ProxyServer) -> tuple[int, str]:
    import aiohttp

    assert proxy.admin_address is not None
    url = f"http://127.0.0.1:{proxy.admin_address[1]}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def test_requests_for_other_hosts_are_not_taken_for_base_url_capture(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    import aiohttp

    proxy = await proxy_factory(mode=Mode.SIMULATE)
    assert proxy.listen_address is not None
    # origin-form with a foreign Host (as an iptables redirect would deliver it): forwarded to that
    # host as plain HTTP (here: the TLS-only fake, so it fails), never simulated, never re-routed
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{proxy.listen_address[1]}/v1/chat/completions",
            json={"model": "m", "messages": []},
            headers={"Host": f"origin.test:{upstream.port}"},
        ) as resp,
    ):
        assert resp.status == 502
    assert upstream.requests == []


OLLAMA_SCRIPT = r"""
import json, ollama
client = ollama.Client(host="http://ollama.ml.svc:11434")
reply = client.chat(model="llama3.1", messages=[{"role": "user", "content": "hi"}])
parts = [c.message.content for c in client.chat(model="llama3.1", messages=[{"role": "user", "content": "hi"}], stream=True)]
print(json.dumps({"text": reply.message.content, "stream": "".join(parts), "chunks": len(parts)}))
"""


async def test_a_plain_http_provider_named_by_host_port_is_simulated(proxy_factory: ProxyFactory) -> None:
    import asyncio
    import json
    import os
    import sys

    proxy = await proxy_factory({**QUIET, "interceptHosts": ["ollama.ml.svc:11434"]})
    assert proxy.listen_address is not None
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("OLLAMA")}
    env["HTTP_PROXY"] = f"http://127.0.0.1:{proxy.listen_address[1]}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OLLAMA_SCRIPT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)
    assert result["text"] and result["stream"] and result["chunks"] > 1  # no DNS for ollama.ml.svc needed
