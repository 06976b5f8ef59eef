"""`intake.enrich` copies the parsed request with two fields set, exactly as `dataclasses.replace`."""

from __future__ import annotations

import dataclasses

from llmsim.providers.base import HttpRequestFacts
from llmsim.runtime import intake
from llmsim.simulation.request import GenerationRequest, Message


def test_enrich_equals_a_dataclasses_replace_with_the_ids() -> None:
    gen = GenerationRequest("openai", "chat", "gpt-4o", messages=(Message("user", "hi"),), extra={"k": 1})
    facts = HttpRequestFacts(
        "POST", "/v1/chat/completions", {}, {}, {"authorization": "Bearer sk-1", "x-request-id": "c-9"}, b"{}"
    )
    enriched = intake.enrich(gen, facts)
    expected = dataclasses.replace(
        gen, api_key_id=intake.api_key_id(facts.headers, facts.query), client_request_id="c-9"
    )
    assert enriched == expected
    assert enriched.api_key_id is not None and gen.api_key_id is None  # the original is untouched


def test_request_ids_are_24_hex_digits_and_differ() -> None:
    ids = {intake.new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)
