"""A tiny LLM application for the llmsim demo: an HTTP service that answers questions with the
official `openai` SDK.

It knows nothing about llmsim. It calls https://api.openai.com like any application would; in a
namespace labelled `llmsim.io/inject=enabled` the injected sidecar intercepts those calls (through
the HTTPS_PROXY and CA-trust variables the webhook sets) and the simulator answers them.

    GET /healthz              -> {"status": "ok"}
    GET /ask?q=TEXT[&stream=0] -> the reply plus what the client observed:
        {"reply", "model", "id", "systemFingerprint", "ttftMs", "totalMs", "chunks", "stream"}
    GET /stats                -> counts of answered and failed questions

Environment: OPENAI_API_KEY (any value works against the simulator), DEMO_MODEL (gpt-4o-mini),
DEMO_PORT (8000), DEMO_MAX_TOKENS (64), DEMO_TIMEOUT_S (30).
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openai

MODEL = os.environ.get("DEMO_MODEL", "gpt-4o-mini")
MAX_TOKENS = int(os.environ.get("DEMO_MAX_TOKENS", "64"))
TIMEOUT_S = float(os.environ.get("DEMO_TIMEOUT_S", "30"))

_client = openai.OpenAI(timeout=TIMEOUT_S, max_retries=2)
_lock = threading.Lock()
_stats = {"answered": 0, "failed": 0}


def ask(question: str, stream: bool) -> dict[str, Any]:
    """One chat completion, timed from the client's side."""
    messages: list[Any] = [{"role": "user", "content": question}]
    started = time.perf_counter()
    if not stream:
        completion = _client.chat.completions.create(model=MODEL, messages=messages, max_tokens=MAX_TOKENS)
        total = (time.perf_counter() - started) * 1000
        return {
            "reply": completion.choices[0].message.content or "",
            "model": completion.model,
            "id": completion.id,
            "systemFingerprint": completion.system_fingerprint,
            "ttftMs": total,
            "totalMs": total,
            "chunks": 1,
            "stream": False,
        }
    ttft: float | None = None
    parts: list[str] = []
    chunks = 0
    model = response_id = fingerprint = None
    with _client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=MAX_TOKENS, stream=True
    ) as events:
        for chunk in events:
            chunks += 1
            model, response_id = chunk.model, chunk.id
            fingerprint = chunk.system_fingerprint or fingerprint
            if chunk.choices and chunk.choices[0].delta.content:
                if ttft is None:
                    ttft = (time.perf_counter() - started) * 1000
                parts.append(chunk.choices[0].delta.content)
    total = (time.perf_counter() - started) * 1000
    return {
        "reply": "".join(parts),
        "model": model,
        "id": response_id,
        "systemFingerprint": fingerprint,
        "ttftMs": ttft if ttft is not None else total,
        "totalMs": total,
        "chunks": chunks,
        "stream": True,
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "llmsim-demo/1"

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"status": "ok"})
            return
        if url.path == "/stats":
            with _lock:
                self._send(200, dict(_stats))
            return
        if url.path != "/ask":
            self._send(404, {"error": f"no route {url.path}; try /ask?q=hello"})
            return
        query = parse_qs(url.query)
        question = (query.get("q") or ["Say hello."])[0]
        stream = (query.get("stream") or ["1"])[0] not in ("0", "false", "no")
        try:
            answer = ask(question, stream)
        except openai.APIError as exc:
            with _lock:
                _stats["failed"] += 1
            status = getattr(exc, "status_code", None) or 502
            self._send(502, {"error": type(exc).__name__, "upstreamStatus": status, "message": str(exc)})
            return
        with _lock:
            _stats["answered"] += 1
        self._send(200, answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    port = int(os.environ.get("DEMO_PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - a container's service port
    print(f"demo app on :{port}, model {MODEL}, base URL {_client.base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
