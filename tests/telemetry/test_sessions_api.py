"""Sessions: created over the control API, fed by real SDK traffic, compared with client-side timing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from simserver import SimServer

USER = [{"role": "user", "content": "Tell me a story."}]
PROFILE: dict[str, Any] = {
    "seed": 11,
    "latency": {
        "ttftMs": {"type": "lognormal", "median": 40, "sigma": 0.3},
        "itlMs": {"type": "constant", "value": 4},
        "outputTokens": {"type": "constant", "value": 15},
    },
}
TOLERANCE_S = 0.010
"""Server- and client-side latencies of the same requests differ by the loopback HTTP round trip and
SDK parsing (about 1-3 ms on a quiet machine); percentiles must agree within 10 ms (or 10 %, if
larger), or within the client overhead measured in the same run when the machine is busier."""
CLOCK_SLACK_S = 0.001
"""The server measures a sub-interval of what the client measures (it sees the request after the
client sent it and writes the answer before the client reads it); 1 ms covers the two clocks."""


def client(server: SimServer, session_id: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.url + "/v1",
        api_key="sk-test",
        max_retries=0,
        default_headers={"x-llmsim-session": session_id},
    )


def create(server: SimServer, **body: Any) -> httpx.Response:
    return httpx.post(server.url + "/v1/sessions", json=body, timeout=10)


def metrics(server: SimServer, session_id: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/metrics/{session_id}", timeout=10)


def close_enough(server_value: float, client_value: float, overhead_s: float = 0.0) -> bool:
    """The server's figure is at most the client's (plus clock slack), and below it by no more than
    the tolerance or three times the client overhead measured in the same run."""
    if server_value > client_value + CLOCK_SLACK_S:
        return False
    return client_value - server_value <= max(TOLERANCE_S, 0.1 * client_value, 3 * overhead_s)


def test_session_metrics_agree_with_client_measurements(sim_server_factory: Callable[..., SimServer]) -> None:
    server = sim_server_factory(PROFILE)
    created = create(server, labels={"team": "search"})
    assert created.status_code == 201
    sid = created.json()["sessionId"]
    assert created.json()["header"] == "x-llmsim-session"
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
    c.chat.completions.create(model="gpt-4o", messages=USER)  # warm-up: connection set-up is not latency
    session = {"x-llmsim-session": sid}
    ttfts: list[float] = []
    e2es: list[float] = []
    itls: list[float] = []
    out_tokens = 0
    n_ok = 20
    first_start = time.perf_counter()
    for _ in range(n_ok):
        t0 = time.perf_counter()
        stream = c.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=session,
        )
        arrivals: list[float] = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.perf_counter())
            if chunk.usage is not None:
                out_tokens += chunk.usage.completion_tokens
        e2es.append(time.perf_counter() - t0)
        ttfts.append(arrivals[0] - t0)
        itls.extend(np.diff(arrivals))
    for fault, error in (("rate_limit", openai.RateLimitError), ("server_error", openai.InternalServerError)):
        for _ in range(2):
            t0 = time.perf_counter()
            with pytest.raises(error):
                c.chat.completions.create(
                    model="gpt-4o", messages=USER, extra_headers={**session, "x-llmsim-fault": fault}
                )
            e2es.append(time.perf_counter() - t0)
    client_window = time.perf_counter() - first_start

    m = metrics(server, sid).json()
    n = n_ok + 4
    assert m["requests"] == n and m["ok"] == n_ok and m["errors"] == 4 and m["activeRequests"] == 0
    assert m["labels"] == {"team": "search"} and m["state"] == "active"
    assert m["errorTypes"] == {
        "rate_limit": {"count": 2, "rate": 2 / n},
        "server_error": {"count": 2, "rate": 2 / n},
    }
    assert m["errorRate"] == pytest.approx(4 / n)
    assert m["faultsInjected"] == {"rate_limit": 2, "server_error": 2}
    assert m["outputTokens"] == out_tokens == n_ok * 15
    assert m["ttftS"]["count"] == n_ok and m["e2eS"]["count"] == n and m["itlS"]["count"] == n_ok * 14
    # What the client adds to each request (round trip, SDK parsing, and on a busy machine waiting
    # for a core), measured over the same requests: the mean of client minus server end-to-end.
    overhead_s = max(0.0, float(np.mean(e2es)) - m["e2eS"]["mean"])
    for q in ("p50", "p90", "p95"):
        client_q = float(np.percentile(ttfts, int(q[1:])))
        assert close_enough(m["ttftS"][q], client_q, overhead_s), (q, m["ttftS"], ttfts, overhead_s)
    for q in ("p50", "p90"):
        client_q = float(np.percentile(e2es, int(q[1:])))
        assert close_enough(m["e2eS"][q], client_q, overhead_s), (q, m["e2eS"], e2es, overhead_s)
    # The slowest request: one client-side stall can dominate it, so only the one-sided bound.
    assert m["e2eS"]["max"] <= max(e2es) + CLOCK_SLACK_S
    assert abs(m["itlS"]["p50"] - float(np.median(itls))) < 0.003
    # RPS and TPS over the session's active window agree with the client's view within 10 %.
    assert m["rps"] == pytest.approx(n / client_window, rel=0.1)
    assert m["tps"] == pytest.approx(out_tokens / client_window, rel=0.1)


def test_a_session_profile_answers_its_requests(sim_server: SimServer) -> None:
    inline = {"extends": [], "content": {"mode": "fixed", "text": "Hello from the session profile."}}
    sid = create(sim_server, profile=inline).json()["sessionId"]
    r = client(sim_server, sid).chat.completions.create(model="gpt-4o", messages=USER)
    assert r.choices[0].message.content == "Hello from the session profile."
    other = create(sim_server).json()["sessionId"]
    r = client(sim_server, other).chat.completions.create(model="gpt-4o", messages=USER)
    assert r.choices[0].message.content != "Hello from the session profile."


def test_profile_by_name_and_unknown_names(sim_server: SimServer) -> None:
    made = create(sim_server, profile="test", id="named-1")
    assert (
        made.status_code == 201 and made.json()["sessionId"] == "named-1" and made.json()["profile"] == "test"
    )
    bad = create(sim_server, profile="no-such-profile")
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "profile" and "no-such-profile" in bad.json()["error"]["message"]


def test_unknown_session_is_404_in_the_provider_error_shape(sim_server: SimServer) -> None:
    missing = metrics(sim_server, "nope")
    assert missing.status_code == 404
    provider_error = httpx.post(sim_server.url + "/v1/chat/completions", content=b"{", timeout=10)
    assert provider_error.status_code == 400
    assert set(missing.json()) == set(provider_error.json()) == {"error"}
    assert (
        set(missing.json()["error"])
        == set(provider_error.json()["error"])
        == {"message", "type", "param", "code"}
    )
    assert missing.json()["error"]["code"] == "session_not_found"
    assert httpx.delete(sim_server.url + "/v1/sessions/nope", timeout=10).status_code == 404


def test_bad_bodies_name_the_field(sim_server: SimServer) -> None:
    r = create(sim_server, profile={"latency": {"ttftMs": {"type": "constant"}}})
    assert r.status_code == 400
    assert "latency.ttftMs" in r.json()["error"]["message"]
    r = create(sim_server, labels={"a": 1})
    assert r.status_code == 400 and r.json()["error"]["param"] == "labels.a"
    r = create(sim_server, id="has spaces")
    assert r.status_code == 400 and r.json()["error"]["param"] == "id"
    assert create(sim_server, id="dup").status_code == 201
    assert create(sim_server, id="dup").status_code == 409
    r = httpx.post(sim_server.url + "/v1/sessions", content=b"[1]", timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_session_lifecycle_events(sim_server: SimServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmsim.events")
    sid = create(sim_server, labels={"run": "1"}).json()["sessionId"]
    client(sim_server, sid).chat.completions.create(model="gpt-4o", messages=USER)
    done = httpx.delete(f"{sim_server.url}/v1/sessions/{sid}", timeout=10)
    assert done.status_code == 200 and done.json()["state"] == "completed" and done.json()["requests"] == 1
    assert metrics(sim_server, sid).json()["state"] == "completed"
    import json

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "llmsim.events"]
    kinds = [line["event"] for line in lines if line.get("subject") == sid]
    assert kinds == ["session.started", "session.completed"]
    completed = next(line for line in lines if line["event"] == "session.completed")
    assert completed["requests"] == 1 and completed["labels"] == {"run": "1"}


def test_a_session_header_alone_starts_a_session(
    sim_server: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    c = client(sim_server, "ci-run-42")
    for _ in range(3):
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    body = metrics(sim_server, "ci-run-42").json()
    assert body["requests"] == 3, body
    with caplog.at_level(logging.WARNING, logger="llmsim.sessions"):
        client(sim_server, "not a valid id!").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
    assert "ignoring x-llmsim-session" in caplog.text
