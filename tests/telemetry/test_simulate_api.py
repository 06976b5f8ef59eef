"""`POST /v1/simulate` (the pure planner behind HTTP) and `GET /openapi.json`."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from simserver import SimServer


def simulate(server: SimServer, **body: Any) -> httpx.Response:
    return httpx.post(server.url + "/v1/simulate", json=body, timeout=30)


def test_thousands_of_requests_simulate_at_once(sim_server: SimServer) -> None:
    overrides = {"latency": {"ttftMs": {"type": "lognormal", "median": 300, "sigma": 0.3}}}
    t0 = time.perf_counter()
    r = simulate(sim_server, count=2000, seed=5, overrides=overrides, includeContent=False)
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["count"] == len(doc["results"]) == 2000 and doc["seed"] == 5 and doc["realtime"] is False
    assert elapsed < 10  # 2000 responses of 12 tokens with 300 ms TTFT would take 10 min for real
    ttft = np.array([x["timing"]["ttftS"] for x in doc["results"]])
    # Median of a lognormal(300 ms, 0.3) sample of 2000: standard error ~ 1.25 * 0.3 * 0.3 s / sqrt(2000)
    # ~ 2.5 ms; allow 4 standard errors.
    se = 1.2533 * 0.3 * 0.3 / math.sqrt(2000)
    assert abs(float(np.median(ttft)) - 0.3) < 4 * se
    assert doc["summary"]["ttftS"]["p50"] == pytest.approx(float(np.median(ttft)))
    assert doc["summary"]["ttftS"]["count"] == 2000


def test_timing_is_consistent_and_seeded(sim_server: SimServer) -> None:
    body = {"count": 3, "seed": 9, "request": {"model": "gpt-4o", "maxTokens": 50}}
    a, b = simulate(sim_server, **body).json(), simulate(sim_server, **body).json()
    assert a == b
    other = simulate(sim_server, **{**body, "seed": 10}).json()
    assert other["results"][0]["choices"][0]["text"] != a["results"][0]["choices"][0]["text"]
    for result in a["results"]:
        t = result["timing"]
        tokens = result["usage"]["outputTokens"]
        assert tokens == 12  # FAST profile
        assert len(t["itlS"]) == tokens - 1
        assert t["e2eS"] == pytest.approx(t["ttftS"] + sum(t["itlS"]))
        assert t["ttftS"] == pytest.approx(0.005) and all(g == pytest.approx(0.001) for g in t["itlS"])
        assert result["choices"][0]["text"] and result["model"] == "gpt-4o"


def test_overrides_faults_and_realtime(sim_server: SimServer) -> None:
    slow = {"latency": {"ttftMs": {"type": "constant", "value": 250}}}
    t0 = time.perf_counter()
    r = simulate(sim_server, overrides=slow, realtime=True).json()
    waited = time.perf_counter() - t0
    e2e = r["results"][0]["timing"]["e2eS"]
    assert r["results"][0]["timing"]["ttftS"] == pytest.approx(0.25)
    assert waited >= e2e
    assert time.perf_counter() - t0 < e2e + 2

    cut = simulate(sim_server, fault="disconnect", count=2).json()["results"]
    for result in cut:
        assert result["fault"]["type"] == "disconnect" and result["fault"]["statusFault"] is False
        assert len(result["timing"]["itlS"]) == result["fault"]["afterTokens"] - 1
        assert result["usage"]["outputTokens"] == result["fault"]["afterTokens"]
    status = simulate(sim_server, fault="rate_limit").json()["results"][0]
    assert status["fault"] == {
        "type": "rate_limit",
        "reason": "forced",
        "afterTokens": 0,
        "statusFault": True,
    }
    assert status["timing"]["ttftS"] is None and status["usage"]["outputTokens"] == 0

    rates = {"faults": {"rates": {"server_error": 0.25}}}
    many = simulate(sim_server, overrides=rates, count=800, includeContent=False, seed=3).json()
    share = many["summary"]["faults"].get("server_error", 0) / 800
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 800)


def test_bad_simulate_bodies_are_400_naming_the_field(sim_server: SimServer) -> None:
    r = simulate(sim_server, count=0)
    assert r.status_code == 400 and r.json()["error"]["param"] == "count"
    r = simulate(sim_server, overrides={"latency": {"ttftMs": {"type": "nope"}}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "overrides"
    assert "latency.ttftMs" in r.json()["error"]["message"]
    r = simulate(sim_server, profile="missing")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_profile"


def test_openapi_document_describes_the_control_api(sim_server: SimServer) -> None:
    doc = httpx.get(sim_server.url + "/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/metrics/{session_id}",
        "/v1/simulate",
    }
    schemas = doc["components"]["schemas"]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref

    # Real bodies validate against the published schemas.
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)

    def validate(instance: Any, name: str) -> None:
        schema = {"$ref": f"urn:openapi#/components/schemas/{name}"}
        jsonschema.Draft202012Validator(schema, registry=registry).validate(instance)

    created = httpx.post(sim_server.url + "/v1/sessions", json={"labels": {"x": "y"}}, timeout=10).json()
    validate(created, "SessionCreated")
    validate(
        httpx.get(f"{sim_server.url}/v1/metrics/{created['sessionId']}", timeout=10).json(), "SessionMetrics"
    )
    validate(simulate(sim_server, count=2, fault="disconnect").json(), "SimulateResult")
    validate(httpx.get(sim_server.url + "/v1/metrics/none", timeout=10).json(), "ErrorBody")
    validate({"count": 2, "overrides": {"seed": 1}}, "Simulate")
    with pytest.raises(jsonschema.ValidationError):
        validate({"count": 0}, "Simulate")


def test_embeddings_and_capped_realtime(sim_server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    emb = simulate(sim_server, request={"operation": "embeddings", "input": ["a b c", "d"]}).json()[
        "results"
    ][0]
    assert emb["choices"] == [] and emb["usage"]["outputTokens"] == 0
    assert (
        emb["timing"]["ttftS"] == emb["timing"]["e2eS"] == pytest.approx(0.005)
        and emb["timing"]["itlS"] == []
    )

    from llmsim.server import control_models

    monkeypatch.setattr(control_models, "REALTIME_MAX_WAIT_S", 0.3)
    t0 = time.perf_counter()
    stalled = simulate(sim_server, fault="timeout", realtime=True).json()["results"][0]
    assert stalled["timing"]["e2eS"] == 600.0  # the profile's faults.params.timeoutS
    assert 0.3 <= time.perf_counter() - t0 < 3


def test_wall_clock_windows_are_evaluated_at_the_given_time(sim_server: SimServer) -> None:
    window = {
        "faults": {"windows": [{"fault": "overloaded", "startAt": "2026-03-02T14:00:00Z", "durationS": 300}]}
    }
    inside = simulate(sim_server, overrides=window, at="2026-03-02T14:01:00Z").json()["results"][0]
    after = simulate(sim_server, overrides=window, at="2026-03-02T14:05:00Z").json()["results"][0]
    assert inside["fault"]["type"] == "overloaded" and inside["fault"]["reason"] == "window"
    assert after["fault"] is None
