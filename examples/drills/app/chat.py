"""A chat app for the drills: streams a completion with an official SDK every INTERVAL_S seconds
and prints one JSON line per request (time, TTFT, mean ITL, text, error), the way a team's own
service would call its provider. The SDK reads its configuration from the environment the
sidecar injection gives it (HTTPS_PROXY, OPENAI_BASE_URL/ANTHROPIC_BASE_URL, SSL_CERT_FILE).

    PROVIDER     openai (default) or anthropic
    BASE_URL     explicit base URL (default: the SDK's own, i.e. the provider's public API)
    MODEL        model name (default gpt-4o-mini / claude-3-5-haiku-latest)
    INTERVAL_S   pause between requests (default 0.5)
    COUNT        requests to send, 0 = until stopped (default 0); then the app idles (or exits, EXIT=1)
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time

_clients: dict[str, object] = {}
"""One SDK client for the app's life (connections are reused, as a real service does)."""


def openai_stream(base_url: str | None, model: str, prompt: str) -> tuple[list[float], str]:
    import openai

    client = _clients.get("openai") or _clients.setdefault(
        "openai", openai.OpenAI(api_key="sk-drill", base_url=base_url, max_retries=0, timeout=20)
    )
    assert isinstance(client, openai.OpenAI)
    marks: list[float] = []
    text = []
    stream = client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": prompt}]
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            marks.append(time.perf_counter())
            text.append(chunk.choices[0].delta.content)
    return marks, "".join(text)


def anthropic_stream(base_url: str | None, model: str, prompt: str) -> tuple[list[float], str]:
    import anthropic

    client = _clients.get("anthropic") or _clients.setdefault(
        "anthropic", anthropic.Anthropic(api_key="sk-ant-drill", base_url=base_url, max_retries=0, timeout=20)
    )
    assert isinstance(client, anthropic.Anthropic)
    marks: list[float] = []
    text = []
    with client.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": prompt}]
    ) as stream:
        for piece in stream.text_stream:
            if piece:
                marks.append(time.perf_counter())
                text.append(piece)
    return marks, "".join(text)


def main() -> int:
    provider = os.environ.get("PROVIDER", "openai")
    base_url = os.environ.get("BASE_URL") or None
    model = os.environ.get("MODEL") or (
        "claude-3-5-haiku-latest" if provider == "anthropic" else "gpt-4o-mini"
    )
    interval = float(os.environ.get("INTERVAL_S", "0.5"))
    count = int(os.environ.get("COUNT", "0"))
    call = anthropic_stream if provider == "anthropic" else openai_stream
    sent = 0
    while count == 0 or sent < count:
        began = time.perf_counter()
        record: dict[str, object] = {"n": sent, "t": time.time()}
        try:
            marks, text = call(base_url, model, f"Say hello to the drill (request {sent}).")
            record["ttft_ms"] = round((marks[0] - began) * 1000, 2) if marks else None
            gaps = [b - a for a, b in itertools.pairwise(marks)]
            record["itl_ms"] = round(sum(gaps) / len(gaps) * 1000, 2) if gaps else None
            record["chunks"] = len(marks)
            record["text"] = text
        except Exception as exc:  # the drill counts failures; the app keeps going
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["e2e_ms"] = round((time.perf_counter() - began) * 1000, 2)
        print(json.dumps(record), flush=True)
        sent += 1
        time.sleep(interval)
    print(json.dumps({"done": True, "sent": sent}), flush=True)
    if os.environ.get("EXIT") == "1":
        return 0
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
