"""A minimal OpenAI-compatible LLM gateway with two upstream providers and failover.

It stands for whatever gateway or client-side router your application uses (LiteLLM, Envoy AI
Gateway, a hand-written wrapper): requests go to the primary provider; a retryable failure
(429, 5xx, timeout, connection error) moves the request to the secondary, and after
`GATEWAY_FAILURE_THRESHOLD` consecutive failures a circuit breaker skips the primary for
`GATEWAY_COOLDOWN_S` seconds before probing it again.

    POST /v1/chat/completions  (streaming and non-streaming; failover only before the first chunk)
    GET  /stats                -> per-provider counts of answered and failed requests
    GET  /healthz

Each answer carries `x-gateway-provider: primary|secondary`.

Environment: PRIMARY_BASE_URL, SECONDARY_BASE_URL (e.g. http://provider-primary/v1),
PRIMARY_API_KEY, SECONDARY_API_KEY (default: a placeholder), GATEWAY_PORT (8000),
GATEWAY_TIMEOUT_S (30), GATEWAY_FAILURE_THRESHOLD (3), GATEWAY_COOLDOWN_S (10).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai

KNOWN_PARAMS = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "n",
     "stream", "stream_options", "tools", "tool_choice", "response_format", "seed", "user"}
)  # fmt: skip
"""Request fields passed to the SDK by name; anything else travels in `extra_body`."""


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures; half-opens (lets one try through) after `cooldown_s`."""

    threshold: int = 3
    cooldown_s: float = 10.0
    failures: int = 0
    opened_at: float | None = None

    def available(self, now: float) -> bool:
        return self.opened_at is None or now - self.opened_at >= self.cooldown_s

    def record(self, ok: bool, now: float) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = now


@dataclass
class Upstream:
    """One provider behind the gateway."""

    name: str
    client: openai.OpenAI
    breaker: CircuitBreaker
    answered: int = 0
    failed: int = 0


@dataclass
class Router:
    """Chooses the order in which upstreams are tried; keeps the counts."""

    upstreams: list[Upstream]
    clock: Callable[[], float] = time.monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self) -> list[Upstream]:
        """Upstreams whose breaker is closed (or half-open) first, in priority order; the others
        last, so that a request is still tried somewhere when every breaker is open."""
        now = self.clock()
        with self.lock:
            ready = [u for u in self.upstreams if u.breaker.available(now)]
            return ready + [u for u in self.upstreams if u not in ready]

    def record(self, upstream: Upstream, ok: bool) -> None:
        with self.lock:
            upstream.breaker.record(ok, self.clock())
            if ok:
                upstream.answered += 1
            else:
                upstream.failed += 1

    def stats(self) -> dict[str, dict[str, Any]]:
        now = self.clock()
        with self.lock:
            return {
                u.name: {"answered": u.answered, "failed": u.failed, "circuitOpen": not u.breaker.available(now)}
                for u in self.upstreams
            }


def retryable(exc: Exception) -> bool:
    """Failures another provider may not have: throttling, server errors, timeouts, broken connections."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError))


def sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    known = {k: v for k, v in body.items() if k in KNOWN_PARAMS}
    extra = {k: v for k, v in body.items() if k not in KNOWN_PARAMS}
    return {**known, "extra_body": extra} if extra else known


def error_body(message: str, kind: str = "service_unavailable") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


class Answer:
    """What the gateway sends back: a status, a JSON body or an SSE stream, and the provider's name."""

    def __init__(self, status: int, provider: str | None, body: Any = None, stream: Iterator[str] | None = None):
        self.status, self.provider, self.body, self.stream = status, provider, body, stream


def complete(router: Router, body: dict[str, Any]) -> Answer:
    """Try the upstreams in order until one answers; failover is possible until the first chunk."""
    arguments = sdk_arguments(body)
    last: Exception | None = None
    for upstream in router.order():
        try:
            if not body.get("stream"):
                completion = upstream.client.chat.completions.create(**arguments)
                router.record(upstream, True)
                return Answer(200, upstream.name, body=completion.model_dump(exclude_unset=True))
            events = upstream.client.chat.completions.create(**arguments)
            first = next(iter(events), None)
        except Exception as exc:
            if not retryable(exc):
                if not isinstance(exc, openai.APIStatusError):
                    return Answer(400, upstream.name, body=error_body(str(exc), "invalid_request_error"))
                inner = exc.body if isinstance(exc.body, dict) else {"message": str(exc)}
                return Answer(exc.status_code, upstream.name, body=inner if "error" in inner else {"error": inner})
            router.record(upstream, False)
            last = exc
            continue
        router.record(upstream, True)
        return Answer(200, upstream.name, stream=_relay(first, events))
    return Answer(503, None, body=error_body(f"every provider failed; last error: {last}"))


def _relay(first: Any, events: Any) -> Iterator[str]:
    if first is not None:
        yield f"data: {first.model_dump_json(exclude_unset=True)}\n\n"
    for chunk in events:
        yield f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n"
    yield "data: [DONE]\n\n"


def make_handler(router: Router) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "llmsim-failover-gateway/1"

        def _json(self, status: int, body: Any, provider: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if provider:
                self.send_header("x-gateway-provider", provider)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._json(200, {"status": "ok"})
            elif self.path == "/stats":
                self._json(200, router.stats())
            else:
                self._json(404, error_body(f"no route {self.path}", "not_found"))

        def do_POST(self) -> None:
            if self.path not in ("/v1/chat/completions", "/chat/completions"):
                self._json(404, error_body(f"no route {self.path}", "not_found"))
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            except ValueError:
                self._json(400, error_body("request body is not JSON", "invalid_request_error"))
                return
            answer = complete(router, body)
            if answer.stream is None:
                self._json(answer.status, answer.body, answer.provider)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.send_header("x-gateway-provider", answer.provider or "")
            self.end_headers()
            try:
                for frame in answer.stream:
                    self.wfile.write(frame.encode())
                    self.wfile.flush()
            except (openai.APIError, OSError):
                pass  # the upstream broke off mid-stream; the client sees a stream without [DONE]
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            pass

    return Handler


def router_from_env(env: dict[str, str]) -> Router:
    timeout = float(env.get("GATEWAY_TIMEOUT_S", "30"))
    threshold = int(env.get("GATEWAY_FAILURE_THRESHOLD", "3"))
    cooldown = float(env.get("GATEWAY_COOLDOWN_S", "10"))
    upstreams = [
        Upstream(
            name=name,
            client=openai.OpenAI(
                base_url=env[f"{name.upper()}_BASE_URL"],
                api_key=env.get(f"{name.upper()}_API_KEY", "sk-placeholder"),
                timeout=timeout,
                max_retries=0,  # the gateway fails over instead of retrying the same provider
            ),
            breaker=CircuitBreaker(threshold=threshold, cooldown_s=cooldown),
        )
        for name in ("primary", "secondary")
    ]
    return Router(upstreams)


def serve(router: Router, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(router))
    server.daemon_threads = True
    return server


def main() -> None:
    router = router_from_env(dict(os.environ))
    port = int(os.environ.get("GATEWAY_PORT", "8000"))
    server = serve(router, "0.0.0.0", port)  # noqa: S104 - a container's service port
    print(f"gateway on :{port}: primary {router.upstreams[0].client.base_url}, "
          f"secondary {router.upstreams[1].client.base_url}", flush=True)  # fmt: skip
    server.serve_forever()


if __name__ == "__main__":
    main()
