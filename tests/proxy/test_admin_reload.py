"""Admin port (health, metrics, kill switch), hot reload and fail-open, against a running proxy."""

from __future__ import annotations

import asyncio
import datetime as dt
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


def token_of(proxy: ProxyServer) -> str:
    return (proxy.options.ca_dir / "admin-token").read_text().strip()


async def admin(
    proxy: ProxyServer, method: str, path: str, token: str | None = "", auth: str | None = None
) -> tuple[int, str]:
    """Call the admin port; control routes get the proxy's token unless `token` is None (none
    sent) or a string other than "" (that one sent); `auth` replaces the whole header."""
    assert proxy.admin_address is not None
    url = f"http://127.0.0.1:{proxy.admin_address[1]}{path}"
    headers = {}
    if auth is not None:
        headers["Authorization"] = auth
    elif token is not None:
        headers["Authorization"] = f"Bearer {token or token_of(proxy)}"
    async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers) as resp:
        return resp.status, await resp.text()


async def test_the_control_routes_refuse_a_caller_without_the_admin_token(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory()
    token_file = proxy.options.ca_dir / "admin-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    for path in ("/pause", "/resume", "/reset"):
        status, text = await admin(proxy, "POST", path, token=None)
        assert status == 401 and json.loads(text)["error"]["code"] == "missing_token"
    status, text = await admin(proxy, "POST", "/pause", token="guess")
    assert status == 401 and json.loads(text)["error"]["code"] == "invalid_token"
    status, _ = await admin(proxy, "POST", "/pause", auth=f"Basic {token_of(proxy)}")
    assert status == 401
    assert is_simulated((await chat(proxy))[1])  # nothing was paused
    for path in ("/healthz", "/readyz", "/metrics"):  # probes and scraping need no token
        assert (await admin(proxy, "GET", path, token=None))[0] == 200
    _, metrics = await admin(proxy, "GET", "/metrics", token=None)
    assert 'llmsim_proxy_admin_refusals_total{reason="missing_token"} 4.0' in metrics
    token_file.write_text("rotated\n")  # a rotated Secret applies without a restart
    assert (await admin(proxy, "POST", "/pause", token="rotated"))[0] == 200
    token_file.unlink()  # an unreadable token refuses control (fails closed)
    status, text = await admin(proxy, "POST", "/resume", token="rotated")
    assert status == 401 and json.loads(text)["error"]["code"] == "token_unavailable"


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


class FakeWallClock:
    """The proxy state's clock, advanced by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


async def test_the_proxy_expires_a_profile_by_itself(proxy_factory: ProxyFactory, upstream: Upstream) -> None:
    proxy = await proxy_factory({**QUIET, "durationS": 0.3})
    clock = FakeWallClock()
    proxy.state.clock = clock
    proxy.state.activated_at = clock()
    assert is_simulated((await chat(proxy))[1])
    clock.advance(0.29)
    assert is_simulated((await chat(proxy))[1])
    clock.advance(0.02)
    assert not is_simulated((await chat(proxy))[1])
    _, metrics = await admin(proxy, "GET", "/metrics")
    assert 'llmsim_proxy_decisions_total{mode="passthrough",reason="expired"} 1.0' in metrics


async def test_a_changed_profile_applies_to_the_next_request_and_a_bad_one_is_ignored(
    proxy_factory: ProxyFactory, upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**QUIET, "mode": "simulate"}))
    proxy = await proxy_factory(profile_file=path)
    assert proxy.watcher is not None and is_simulated((await chat(proxy))[1])
    assert not proxy.watcher.check(), "an unchanged file is not reloaded"
    path.write_text(yaml.safe_dump({"mode": "passthrough"}))
    assert proxy.watcher.check() and proxy.state.profile.spec.mode.value == "passthrough"
    assert not is_simulated((await chat(proxy))[1])
    generation = proxy.state.generation
    path.write_text("mode: chaos\nlatency: {ttftMs: {type: nope}}\n")
    assert not proxy.watcher.check()
    assert proxy.state.generation == generation and proxy.state.profile.spec.mode.value == "passthrough"
    assert "rejected" in caplog.text and "mode" in caplog.text
    assert (
        proxy.metrics.registry.get_sample_value("llmsim_proxy_profile_reloads_total", {"result": "invalid"})
        == 1
    )


async def test_the_watcher_checks_the_file_once_per_interval_and_survives_a_failing_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """How soon a change applies: within one `interval_s` (0.5 s by default) plus the parse."""
    from llmsim.proxy.metrics import ProxyMetrics
    from llmsim.proxy.reload import POLL_INTERVAL_S, ProfileWatcher
    from llmsim.proxy.state import ProxyState

    from .conftest import named

    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(QUIET))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 3:
            raise asyncio.CancelledError

    watcher = ProfileWatcher(path, ProxyState(named(QUIET)), ProxyMetrics(), sleep=sleep)
    checks: list[int] = []

    def check() -> bool:
        checks.append(1)
        if len(checks) == 1:
            raise OSError("disk went away")
        return False

    watcher.check = check  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await watcher.run()
    assert waits == [POLL_INTERVAL_S] * 4 and POLL_INTERVAL_S <= 0.5
    assert len(checks) == 3, "a failed check is logged and the next one still runs"
    assert "profile reload failed" in caplog.text


async def test_an_in_flight_stream_survives_a_reload(
    proxy_factory: ProxyFactory, upstream: Upstream, tmp_path: Path
) -> None:
    from .conftest import timed_stream

    upstream.itl_s = 0.04
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({"mode": "passthrough"}))
    proxy = await proxy_factory(profile_file=path)
    assert proxy.watcher is not None
    task = asyncio.create_task(timed_stream(proxy))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (upstream.sent_at and upstream.sent_at[-1]):  # the stream is under way
        assert loop.time() < deadline and not task.done()
        await asyncio.sleep(0.005)
    path.write_text(yaml.safe_dump({**QUIET, "mode": "simulate"}))
    assert proxy.watcher.check()
    status, _, times, body = await task
    assert status == 200 and body.endswith(b"[DONE]\n\n") and -1.0 not in times
    assert len(upstream.sent_at[-1]) == upstream.tokens, "the whole stream came from the upstream"
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
