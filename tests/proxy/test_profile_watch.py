"""The sidecar's watch of its own SimulationProfile: changes and `paused` apply at once, deletion
and an unreadable API fail safe, the file serves in between. (Against a real API server:
tests/cluster/test_cluster_safety.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.profile_watch import KubeTarget, ProfileWatch, WatchHealth
from llmsim.proxy.reload import ProfileWatcher
from llmsim.proxy.runner import ProxyServer
from llmsim.proxy.state import ProxyState

from .conftest import QUIET, ProxyFactory, named
from .fakes import Upstream
from .test_admin_reload import chat, is_simulated


def resource(spec: dict[str, Any], version: int = 1, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmsim.io/v1alpha1",
        "kind": "SimulationProfile",
        "metadata": {"name": "drill", "namespace": "team", "resourceVersion": str(version),
                     "creationTimestamp": "2026-03-02T14:00:00Z", **meta},
        "spec": spec,
    }  # fmt: skip


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watch_of(state: ProxyState, clock: FakeClock, grace_s: float = 30.0) -> ProfileWatch:
    target = KubeTarget("team", "drill", "http://127.0.0.1:1", Path("/nonexistent"), None)
    return ProfileWatch(target, state, ProxyMetrics(), grace_s=grace_s, clock=clock)


def test_health_fails_safe_on_deletion_and_after_the_grace_only() -> None:
    health = WatchHealth(grace_s=10, started=0.0)
    assert health.failsafe(9.0) is None  # starting: the file serves
    assert health.failsafe(10.5) == "unreadable"
    health.present(11.0)
    assert health.failsafe(20.0) is None and health.authoritative()
    health.failed()
    assert not health.authoritative() and health.failsafe(20.9) is None
    assert health.failsafe(21.1) == "unreadable"
    health.gone(22.0)
    assert health.failsafe(22.0) == "deleted"
    assert WatchHealth(grace_s=0, started=0.0).failsafe(1e9) is None  # 0: the file forever


def test_a_changed_spec_is_installed_anchored_to_the_creation_and_paused_applies() -> None:
    state, clock = ProxyState(named(QUIET, "drill")), FakeClock()
    watch = watch_of(state, clock)
    spec = {
        **QUIET,
        "durationS": 600,
        "faults": {"windows": [{"fault": "overloaded", "startS": 60, "durationS": 30}]},
    }
    watch.apply(resource(spec))
    assert state.profile.source == "api:team/drill" and state.api_authoritative
    assert (
        state.profile.spec.until is not None
        and state.profile.spec.until.isoformat() == "2026-03-02T14:10:00+00:00"
    )
    window = state.profile.spec.faults.windows[0]
    assert window.start_at is not None and window.start_at.isoformat() == "2026-03-02T14:01:00+00:00"
    generation = state.generation
    watch.apply(resource(spec, version=2))  # the same spec again: nothing to install
    assert state.generation == generation
    watch.apply(resource({**spec, "paused": True}, version=3))
    assert state.profile.spec.paused and state.generation == generation + 1
    watch.apply(resource({**spec, "percentage": 500}, version=4))  # invalid: kept
    assert state.profile.spec.paused


def test_the_operators_kill_switch_annotation_pauses_the_profile() -> None:
    state, clock = ProxyState(named(QUIET, "drill")), FakeClock()
    watch = watch_of(state, clock)
    watch.apply(
        resource(QUIET, annotations={"llmsim.io/kill-switch": "namespace team llmsim.io/paused=true"})
    )
    assert state.profile.spec.paused
    watch.apply(resource(QUIET, version=2))  # the annotation removed: the spec's own paused (false)
    assert not state.profile.spec.paused


def test_deletion_fails_safe_at_once_and_a_recreated_profile_recovers() -> None:
    state, clock = ProxyState(named(QUIET, "drill")), FakeClock()
    watch = watch_of(state, clock)
    watch.apply(resource(QUIET))
    watch.apply(None)
    assert state.failsafe == "deleted"
    watch.apply(resource(QUIET, version=9))
    assert state.failsafe is None
    assert watch.stats.events == ["failsafe", "recovered"]  # the same spec: nothing installed


def test_an_unreadable_api_leaves_the_file_in_charge_until_the_grace_runs_out(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(json.dumps({"apiVersion": "llmsim.io/v1alpha1", "kind": "SimulationProfile",
                                "metadata": {"name": "drill"}, "spec": QUIET}))  # fmt: skip
    state, clock = ProxyState(named(QUIET, "drill")), FakeClock()
    watch = watch_of(state, clock, grace_s=10)
    files = ProfileWatcher(path, state, watch.metrics)
    watch.apply(resource(QUIET))
    path.write_text(path.read_text().replace('"spec": {', '"spec": {"mode": "perturb", '))
    assert not files.check()  # the API is current: the lagging file is not installed
    watch.failed("connection refused")
    path.write_text(path.read_text().replace('"perturb"', '"passthrough"'))
    assert files.check() and state.profile.spec.mode == "passthrough"  # the file is the fallback
    clock.now += 9
    watch.failed("connection refused")
    assert state.failsafe is None
    clock.now += 2
    watch.failed("connection refused")
    assert state.failsafe == "unreadable"


class FakeApi:
    """The two calls the watch makes (list by name, watch from a version), on an aiohttp server."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = resource({**QUIET, "seed": 4})
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status = 200
        self.auth: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.auth.append(request.headers.get("Authorization", ""))
        assert request.query["fieldSelector"] == "metadata.name=drill"
        if self.status != 200:
            return web.json_response({"kind": "Status", "code": self.status}, status=self.status)
        if "watch" not in request.query:
            return web.json_response(
                {"metadata": {"resourceVersion": "1"}, "items": [self.obj] if self.obj else []}
            )
        resp = web.StreamResponse()
        await resp.prepare(request)
        try:
            while True:
                event = await asyncio.wait_for(self.events.get(), float(request.query["timeoutSeconds"]))
                await resp.write(json.dumps(event).encode() + b"\n")
        except TimeoutError:
            pass
        return resp


@pytest.fixture
async def fake_api() -> AsyncIterator[tuple[FakeApi, str]]:
    api = FakeApi()
    app = web.Application()
    app.router.add_get("/apis/llmsim.io/v1alpha1/namespaces/team/simulationprofiles", api.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.2)  # open watches end with the test
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield api, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def wait_until(check: Any, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_the_proxy_follows_its_watched_profile_over_http(
    proxy_factory: ProxyFactory, upstream: Upstream, fake_api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    api, url = fake_api
    token = tmp_path / "sa-token"
    token.write_text("sa-token-1\n")
    proxy: ProxyServer = await proxy_factory(
        watch_profile="team/drill", kube_api=url, kube_token_file=token, kube_ca_file=None, watch_grace_s=30
    )
    assert proxy.profile_watch is not None
    await wait_until(lambda: proxy.state.profile.source == "api:team/drill")
    assert is_simulated((await chat(proxy))[1])
    await api.events.put({"type": "MODIFIED", "object": resource({**QUIET, "paused": True}, version=2)})
    await wait_until(lambda: proxy.state.profile.spec.paused)
    assert not is_simulated((await chat(proxy))[1])
    await api.events.put({"type": "DELETED", "object": resource({**QUIET, "paused": True}, version=3)})
    await wait_until(lambda: proxy.state.failsafe == "deleted")
    status, doc, _ = await chat(proxy, **{"x-simulation-mode": "simulate"})  # headers cannot re-arm it
    assert status == 200 and not is_simulated(doc)
    assert api.auth and all(a == "Bearer sa-token-1" for a in api.auth)
    async with aiohttp.ClientSession() as session:
        assert proxy.admin_address is not None
        async with session.get(f"http://127.0.0.1:{proxy.admin_address[1]}/metrics") as resp:
            text = await resp.text()
    assert 'llmsim_proxy_decisions_total{mode="passthrough",reason="failsafe"} 1.0' in text


async def test_an_extra_listener_catches_an_in_cluster_provider_on_its_own_port(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    """host-alias capture of `ollama.ml.svc:11434`: /etc/hosts sends the app to 127.0.0.1:11434,
    where `--listen-also` serves; the Host header says which provider it meant."""
    proxy = await proxy_factory(
        {**QUIET, "interceptHosts": ["ollama.ml.svc:11434"]},
        listen_also=(("127.0.0.1", 0),),
        ipv6_loopback=True,
    )
    (_, also_port), *v6 = proxy.also_addresses
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"http://127.0.0.1:{also_port}/api/chat", json=body, headers={"Host": "ollama.ml.svc:11434"}
        ) as resp:
            doc = await resp.json()
        assert resp.status == 200 and doc["message"]["content"]  # simulated: no ollama exists
        if v6:  # the [::1] listener of iptables capture (ip6tables redirects there)
            async with session.post(
                f"http://[::1]:{v6[0][1]}/api/chat", json=body, headers={"Host": "ollama.ml.svc:11434"}
            ) as resp:
                assert resp.status == 200 and (await resp.json())["message"]["content"]
