"""The failover example: the gateway's circuit breaker (pure, with a fake clock), and the whole drill
in-process: two `llmsim serve` apps with the example's profiles, the outage window reached by moving
the primary's activation time instead of waiting, traffic moving to the secondary and back."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from examplefiles import EXAMPLES
from served import ServedApp, load_example_module

from llmsim import profiles
from llmsim.runtime.state import STATE
from llmsim.server.app import create_app

gateway = load_example_module("failover/gateway.py", "llmsim_failover_gateway")
check = load_example_module("failover/check_failover.py", "llmsim_failover_check")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_and_half_opens_after_the_cooldown() -> None:
    breaker = gateway.CircuitBreaker(threshold=3, cooldown_s=10)
    for _ in range(2):
        breaker.record(False, 0.0)
    assert breaker.available(0.0)
    breaker.record(False, 1.0)
    assert not breaker.available(5.0)
    assert breaker.available(11.0)  # half-open: one try goes through
    breaker.record(True, 11.0)
    assert breaker.failures == 0 and breaker.available(11.0)


def test_a_success_resets_the_failure_count() -> None:
    breaker = gateway.CircuitBreaker(threshold=2, cooldown_s=10)
    breaker.record(False, 0.0)
    breaker.record(True, 0.0)
    breaker.record(False, 0.0)
    assert breaker.available(0.0)


def test_the_router_tries_healthy_upstreams_first_and_open_ones_last() -> None:
    clock = FakeClock()
    ups = [
        gateway.Upstream(n, client=None, breaker=gateway.CircuitBreaker(1, 10))
        for n in ("primary", "secondary")
    ]
    router = gateway.Router(ups, clock=clock)
    assert [u.name for u in router.order()] == ["primary", "secondary"]
    router.record(ups[0], False)
    assert [u.name for u in router.order()] == ["secondary", "primary"]
    clock.now += 10
    assert [u.name for u in router.order()] == ["primary", "secondary"]
    assert router.stats()["primary"] == {"answered": 0, "failed": 1, "circuitOpen": False}


def test_only_throttling_server_errors_and_connection_trouble_fail_over() -> None:
    request = httpx2.Request("POST", "http://x/v1/chat/completions")

    def status(code: int) -> openai.APIStatusError:
        response = httpx2.Response(code, request=request)
        return openai.APIStatusError("x", response=response, body=None)

    assert (
        gateway.retryable(status(429)) and gateway.retryable(status(503)) and gateway.retryable(status(500))
    )
    assert not gateway.retryable(status(400)) and not gateway.retryable(status(401))
    assert gateway.retryable(openai.APIConnectionError(request=request))
    assert gateway.retryable(openai.APITimeoutError(request=request))


def test_the_verdict_needs_an_outage_a_move_and_a_healthy_primary() -> None:
    ok = {"primary": {"answered": 5, "failed": 3}, "secondary": {"answered": 4, "failed": 0}}
    assert check.verdict(ok) == []
    assert len(check.verdict({"primary": {"answered": 5, "failed": 0}, "secondary": {"answered": 0}})) == 2


@pytest.fixture()
def drill() -> Iterator[dict[str, Any]]:
    primary_profile = profiles.load_file(EXAMPLES / "failover" / "primary-profile.yaml")
    secondary_profile = profiles.load_file(EXAMPLES / "failover" / "secondary-profile.yaml")
    primary_app = create_app(profiles.ProfileRegistry(primary_profile))
    secondary_app = create_app(profiles.ProfileRegistry(secondary_profile))
    with ServedApp(primary_app) as primary, ServedApp(secondary_app) as secondary:
        router = gateway.router_from_env(
            {
                "PRIMARY_BASE_URL": f"{primary.url}/v1",
                "SECONDARY_BASE_URL": f"{secondary.url}/v1",
                "GATEWAY_FAILURE_THRESHOLD": "2",
                "GATEWAY_COOLDOWN_S": "10",
                "GATEWAY_TIMEOUT_S": "10",
            }
        )
        router.clock = clock = FakeClock()  # the breaker's cooldown passes when the test says so
        server = gateway.serve(router, "127.0.0.1", 0)
        import threading

        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield {
                "router": router,
                "clock": clock,
                "url": f"http://127.0.0.1:{server.server_address[1]}",
                "primary_state": primary_app[STATE],
                "primary_name": primary_profile.name,
            }
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


def ask(url: str, stream: bool) -> tuple[str, str]:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "stream": stream,
    }
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200
        text = response.read().decode()
        return response.headers["x-gateway-provider"], text


def set_elapsed(state: Any, name: str, seconds: float) -> None:
    """Pretend the profile became active `seconds` ago (fault windows count from activation)."""
    state.activated_at[name] = time.monotonic() - seconds


def test_traffic_moves_to_the_secondary_during_the_outage_and_back_after_it(drill: dict[str, Any]) -> None:
    state, name, url = drill["primary_state"], drill["primary_name"], drill["url"]
    set_elapsed(state, name, 5)  # before the window (30 s .. 90 s of every 120 s)
    assert ask(url, stream=False)[0] == "primary"
    set_elapsed(state, name, 45)  # inside the window: the primary answers 503 overloaded
    served = [ask(url, stream=i % 2 == 0) for i in range(6)]
    assert {provider for provider, _ in served} == {"secondary"}
    assert all("fp_llmsim" in text for _, text in served)
    assert served[0][1].rstrip().endswith("data: [DONE]")  # streams are relayed whole
    stats = drill["router"].stats()
    assert stats["primary"]["failed"] == 2  # the breaker opened after two failures; then it was skipped
    assert stats["primary"]["circuitOpen"] is True
    set_elapsed(state, name, 100)  # after the window: healthy again
    assert ask(url, stream=False)[0] == "secondary"  # still within the breaker's cooldown
    drill["clock"].now += 10  # the cooldown passes: the next request probes the primary
    assert ask(url, stream=False)[0] == "primary"
    assert check.verdict(drill["router"].stats()) == []
