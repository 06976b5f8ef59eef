"""Large bodies under the size limit are parsed off the event loop (a worker thread, and over
4 MiB a worker process) or refused by the per-request decoding budget; either way health checks
stay fast (issue 18, item 1)."""

from __future__ import annotations

import json

from hostile.harness import Served, bounded, probe

MB = 1 << 20


def test_a_16_mb_prompt_is_parsed_off_the_event_loop(served: Served) -> None:
    # The worker process starts with the first body over 4 MiB (its imports take about a second):
    # start it here, so the case below measures a parse, not the start-up.
    warm = json.dumps(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "warm " * MB}], "max_tokens": 8}
    )
    assert probe(served, "POST", "/v1/chat/completions", warm.encode(), timeout_s=30).status == 400
    prompt = "hello world, this is a prompt. " * (16 * MB // 31)
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}], "max_tokens": 8})
    answer = bounded(served, "POST", "/v1/chat/completions", body.encode())
    # far past the default 128k-token context window: the provider's own 400
    assert answer.status == 400, answer.body[:300]
    assert json.loads(answer.body)["error"]["code"] == "context_length_exceeded"


def test_a_body_of_a_million_tiny_messages_is_refused_by_the_decoding_budget(served: Served) -> None:
    messages = [{"role": "user", "content": "hi"}] * 500_000
    body = json.dumps({"model": "gpt-4o", "messages": messages})
    answer = bounded(served, "POST", "/v1/chat/completions", body.encode())
    assert answer.status == 413, answer.body[:300]
    assert "budget" in json.loads(answer.body)["error"]["message"]


def test_a_large_body_within_the_budget_is_served(served: Served) -> None:
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " * 20}
        for i in range(20_000)
    ]
    body = json.dumps({"model": "gpt-4o", "messages": messages, "max_tokens": 8})
    assert len(body) > 2 * MB
    answer = bounded(served, "POST", "/v1/chat/completions", body.encode())
    assert answer.status in (200, 400), answer.body[:300]
