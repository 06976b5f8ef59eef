"""Labels stay bounded: model names are normalised and budgeted, and no label carries a request,
session or trace id, whatever the clients send."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmsim.profiles import ProfileRegistry
from llmsim.server.app import create_app
from llmsim.telemetry.facade import Telemetry
from llmsim.telemetry.labels import OTHER, ModelLabeler, normalise_model
from simserver import FAST, SimServer, profile_from


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("  llama3.1:8b\n", "llama3.1:8b"),
        ("models/gemini-2.0-flash", "models/gemini-2.0-flash"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet@20240620"),
        ("Tell me a joke about", None),
        ('{"model": "x"}', None),
        ("gpt-4o\x00", None),
        ("", None),
        (None, None),
        ("m" * 129, None),
        ("-leading-dash", None),
    ],
)
def test_model_names_are_normalised_or_refused(raw: str | None, label: str | None) -> None:
    assert normalise_model(raw) == label


def test_a_labeler_admits_variants_of_a_known_name_as_that_name_and_refuses_junk() -> None:
    labeler = ModelLabeler(known=["gpt-4o"], limit=1)
    assert labeler(" gpt-4o ") == "gpt-4o"
    assert labeler("write a poem") == OTHER
    assert labeler("first-unknown") == "first-unknown"
    assert labeler("second-unknown") == OTHER
    assert labeler.distinct == 2


def test_no_label_of_the_exposition_carries_request_session_or_trace_ids() -> None:
    registry = ProfileRegistry(profile_from(FAST))
    telemetry = Telemetry(models=ModelLabeler(known=["gpt-4o"], limit=2))
    server = SimServer(create_app(registry, telemetry=telemetry)).start()
    secrets: list[str] = []
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
        for i in range(30):
            request_id, session = uuid.uuid4().hex, f"ses_{uuid.uuid4().hex[:12]}"
            trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
            secrets += [request_id, session, trace.split("-")[1]]
            client.chat.completions.create(
                model=f"junk-{uuid.uuid4().hex}" if i % 2 else "gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=2,
                extra_headers={"x-request-id": request_id, "x-llmsim-session": session, "traceparent": trace},
            )
        exposition = httpx.get(server.url + "/metrics").text
    finally:
        server.stop()
    values: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            values.update(sample.labels.values())
    assert not [s for s in secrets if any(s in v for v in values)]
    models = {
        s.labels["model"]
        for f in text_string_to_metric_families(exposition)
        for s in f.samples
        if f.name in ("llmsim_requests", "llmsim_requests_total")
    }
    assert len(models) == 1 + 2 + 1  # the known name, the first two unknown ones, other
    assert "gpt-4o" in models and OTHER in models
