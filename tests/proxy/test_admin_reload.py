"""Admin port (health, metrics, kill switch), hot reload and fail-open, against a running proxy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
import yaml

from llmsim.proxy.runner import ProxyServer

from .conftest import QUIET, ProxyFactory, client_ssl
from .fakes import Upstream

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def chat(proxy: ProxyServer, **headers: str) -> tuple[int, dict[str, object], dict[str, str]]:
    assert proxy.listen_address is not None
    async with aiohttp.ClientSession() as session, session.post(
        "https://api.openai.com/v1/chat/completions", json=CHAT, headers=headers,
        proxy=f"http://127.0.0.1:{proxy.listen_address[1]}", ssl=client_ssl(proxy),
    ) as resp:  # fmt: skip
        return resp.status, await resp.json(), dict(resp.headers)


async def admin(proxy: ProxyServer, method: str, path: str) -> tuple[int, str]:
    assert proxy.admin_address is not None
    url = f"http://127.0.0.1:{proxy.admin_address[1]}{path}"
    async with aiohttp.ClientSession() as session, session.request(method, url) as resp:
        return resp.status, await resp.text()


def is_simulated(doc: dict[str, object]) -> bool:
    return doc["choices"][0]["message"]["content"] != "upstream says hi"  # type: ignore[index]


async def test_pause_and_reset_pass_everything_through_until_resume(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory()
    assert is_simulated((await chat(proxy))[1])
    assert (await admin(proxy, "POST", "/pause"))[0] == 200
    assert not is_simulated((await chat(proxy, **{"x-simulation-mode": "simulate"}))[1])
    assert (await admin(proxy, "POST", "/resume"))[0] == 200
    assert is_simulated((await chat(proxy))[1])
    await admin(proxy, "POST", "/reset")
    assert not is_simulated((await chat(proxy))[1])
    status, health = await admin(proxy, "GET", "/healthz")
    assert status == 200 and json.loads(health)["paused"] is True
    status, metrics = await admin(proxy, "GET", "/metrics")
    assert 'llmsim_proxy_decisions_total{mode="passthrough",reason="paused"} 2.0' in metrics
    assert "llmsim_proxy_paused 1.0" in metrics
    # the simulator's own telemetry is on the same page: simulated and passed-through requests
    requests = [x for x in metrics.splitlines() if x.startswith("llmsim_requests_total{")]
    assert any('mode="simulate"' in x for x in requests) and any('mode="passthrough"' in x for x in requests)
    assert (await admin(proxy, "GET", "/readyz"))[0] == 200


async def test_the_proxy_expires_a_profile_by_itself(proxy_factory: ProxyFactory, upstream: Upstream) -> None:
    proxy = await proxy_factory({**QUIET, "durationS": 0.3})
    assert is_simulated((await chat(proxy))[1])
    await asyncio.sleep(0.35)
    assert not is_simulated((await chat(proxy))[1])


async def test_a_changed_profile_applies_within_two_seconds_and_a_bad_one_is_ignored(
    proxy_factory: ProxyFactory, upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**QUIET, "mode": "simulate"}))
    proxy = await proxy_factory(profile_file=path)
    assert is_simulated((await chat(proxy))[1])
    path.write_text(yaml.safe_dump({"mode": "passthrough"}))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while proxy.state.profile.spec.mode.value != "passthrough":
        assert loop.time() - t0 < 2.0, "reload took longer than 2 s"
        await asyncio.sleep(0.05)
    assert not is_simulated((await chat(proxy))[1])
    generation = proxy.state.generation
    path.write_text("mode: chaos\nlatency: {ttftMs: {type: nope}}\n")
    await asyncio.sleep(0.5)
    assert proxy.state.generation == generation and proxy.state.profile.spec.mode.value == "passthrough"
    assert "rejected" in caplog.text and "mode" in caplog.text
    assert (
        proxy.metrics.registry.get_sample_value("llmsim_proxy_profile_reloads_total", {"result": "invalid"})
        == 1
    )


async def test_an_in_flight_stream_survives_a_reload(
    proxy_factory: ProxyFactory, upstream: Upstream, tmp_path: Path
) -> None:
    from .conftest import timed_stream

    upstream.itl_s = 0.04
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"mode": "passthrough"}))
    proxy = await proxy_factory(profile_file=path)
    task = asyncio.create_task(timed_stream(proxy))
    await asyncio.sleep(0.15)
    path.write_text(yaml.safe_dump({**QUIET, "mode": "simulate"}))
    status, _, times, body = await task
    assert status == 200 and body.endswith(b"[DONE]\n\n") and -1.0 not in times
    assert proxy.state.profile.spec.mode.value == "simulate"


async def test_simulation_failures_fail_open_with_a_provider_error(
    proxy_factory: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmsim.proxy import datapath

    proxy = await proxy_factory()

    def broken(request: object, body: bytes) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(datapath, "_rewind", broken)
    status, doc, headers = await chat(proxy)
    assert status == 500 and doc["error"]["type"] == "server_error"  # type: ignore[index]
    assert "internal error" in doc["error"]["message"]  # type: ignore[index]
    assert headers.get("x-llmsim-fail-open") == "1"
    assert proxy.metrics.registry.get_sample_value("llmsim_proxy_fail_open_total", {"mode": "simulate"}) == 1
