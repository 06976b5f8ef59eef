"""Every control-API and helper-route input error is a JSON 4xx, never a 500 (issue 18, item 5)."""

from __future__ import annotations

import json

import pytest

from hostile.harness import Served, bounded, probe

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
HUGE_INT = b'{"labels": {"a": "b"}, "id": "x", "n": ' + b"9" * 5000 + b"}"
SURROGATE_LABEL = b'{"labels": {"team": "\\ud800"}}'
SURROGATE_ID = b'{"id": "\\udfff-session"}'
NOT_UTF8 = b'{"labels": {"team": "\xff\xfe"}}'

BODIES = {
    "deep arrays": DEEP,
    "deep objects": DEEP_OBJECT,
    "5000-digit integer": HUGE_INT,
    "lone surrogate in a label": SURROGATE_LABEL,
    "lone surrogate in an id": SURROGATE_ID,
    "invalid UTF-8": NOT_UTF8,
}
ROUTES = ["/v1/sessions", "/v1/simulate", "/api/show"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(BODIES))
def test_a_hostile_control_body_gets_a_json_4xx(served: Served, route: str, name: str) -> None:
    answer = bounded(served, "POST", route, BODIES[name])
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    doc = json.loads(answer.body)
    assert "error" in doc


@pytest.mark.parametrize("name", list(BODIES))
def test_a_hostile_provider_body_gets_the_providers_4xx(served: Served, name: str) -> None:
    answer = bounded(served, "POST", "/v1/chat/completions", BODIES[name])
    assert answer.status == 400, (answer.status, answer.body[:300])
    assert json.loads(answer.body)["error"]["type"] == "invalid_request_error"


def test_a_session_with_a_surrogate_label_is_rejected_and_sessions_still_work(served: Served) -> None:
    rejected = probe(served, "POST", "/v1/sessions", SURROGATE_LABEL)
    assert rejected.status == 400
    assert "surrogate" in json.loads(rejected.body)["error"]["message"]
    created = probe(served, "POST", "/v1/sessions", b'{"labels": {"team": "\\ud83d\\ude00"}}')  # a valid pair
    assert created.status == 201, created.body
    session = json.loads(created.body)
    assert session["labels"] == {"team": "\U0001f600"}
    read = probe(served, "GET", f"/v1/metrics/{session['sessionId']}")
    assert read.status == 200, read.body
    deleted = probe(served, "DELETE", f"/v1/sessions/{session['sessionId']}")
    assert deleted.status == 200, deleted.body


SIMULATE_BODIES = {
    "a billion tokens by overrides": {
        "overrides": {"latency": {"outputTokens": {"type": "constant", "value": 1e9}}},
        "request": {"max_tokens": 1_000_000_000},
    },
    "a billion tokens by an inline profile": {
        "profile": {"latency": {"outputTokens": {"type": "constant", "value": 1e9}}},
        "request": {"max_tokens": 1_000_000_000},
    },
    "count x n past the budget": {"count": 10_000, "request": {"n": 16, "max_tokens": 4096}},
    "100k embedding inputs": {"request": {"operation": "embeddings", "input": ["x"] * 100_000}},
}


@pytest.mark.parametrize("name", list(SIMULATE_BODIES))
def test_simulate_cannot_be_asked_for_unbounded_work(served: Served, name: str) -> None:
    answer = bounded(served, "POST", "/v1/simulate", json.dumps(SIMULATE_BODIES[name]).encode())
    assert answer.status in (200, 400), answer.body[:300]
    if answer.status == 200:  # replies are cut at 65,536 tokens whatever max tokens and the profile say
        assert all(r["usage"]["outputTokens"] <= 65_536 for r in json.loads(answer.body)["results"])
