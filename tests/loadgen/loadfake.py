"""A tiny fake LLM provider (aiohttp, same event loop as the test) for the load generator tests.

It answers every provider route with a deterministic stream: the first token after `ttft_s`,
then one token every `itl_s`, `tokens` tokens in all, each token due at an absolute deadline.
The request header `x-fake` switches behaviour: `429`, `401`, `500`, `529` (status errors in the
provider's shape), `garbage` (200 with a non-JSON body), `disconnect` (cut mid-stream),
`midstream` (an in-stream error event), `slow` (never answers within the client's timeout).
`Fake.fail_between` makes every request in a time window answer 503.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Fake:
    ttft_s: float = 0.05
    itl_s: float = 0.01
    tokens: int = 8
    fail_between: tuple[float, float] | None = None
    """Seconds since the first request during which every request gets a 503."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    _t0: float | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.openai)
        app.router.add_post("/openai/deployments/{dep}/chat/completions", self.openai)
        app.router.add_post("/v1/messages", self.anthropic)
        app.router.add_post("/{ver}/models/{call}", self.gemini)
        app.router.add_post("/api/chat", self.ollama)
        return app

    # --- behaviour shared by all routes ---

    async def _prelude(
        self, request: web.Request, provider: str
    ) -> tuple[dict[str, Any], web.Response | None]:
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        body = await request.json()
        self.requests.append({"path": request.path_qs, "headers": dict(request.headers), "body": body})
        mode = request.headers.get("x-fake", "")
        if self.fail_between and self.fail_between[0] <= now - self._t0 < self.fail_between[1]:
            mode = "503"
        if mode.isdigit():
            return body, _error(provider, int(mode))
        if mode == "slow":
            await asyncio.sleep(30)
        if mode == "garbage":
            return body, web.Response(status=200, body=b"<html>not an API</html>", content_type="text/html")
        return body, None

    async def _stream(
        self, request: web.Request, content_type: str, frames: list[bytes], tail: list[bytes]
    ) -> Any:
        mode = request.headers.get("x-fake", "")
        resp = web.StreamResponse(headers={"content-type": content_type})
        await resp.prepare(request)
        start = time.monotonic()
        for i, frame in enumerate(frames):
            due = start + self.ttft_s + i * self.itl_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if mode == "disconnect" and i == len(frames) // 2:
                assert request.transport is not None
                request.transport.close()
                return resp
            if mode == "midstream" and i == len(frames) // 2:
                await resp.write(tail[-1])
                await resp.write_eof()
                return resp
            await resp.write(frame)
        for frame in tail[:-1]:
            await resp.write(frame)
        await resp.write_eof()
        return resp

    async def openai(self, request: web.Request) -> Any:
        body, early = await self._prelude(request, "openai")
        if early is not None:
            return early
        usage = {"prompt_tokens": 11, "completion_tokens": self.tokens, "total_tokens": 11 + self.tokens}
        if not body.get("stream"):
            await asyncio.sleep(self.ttft_s + (self.tokens - 1) * self.itl_s)
            message = {"role": "assistant", "content": "tok " * self.tokens}
            return web.json_response({"choices": [{"index": 0, "message": message}], "usage": usage})
        frames = [
            b"data: " + _dumps({"choices": [{"index": 0, "delta": {"content": "tok "}}]}) + b"\n\n"
            for _ in range(self.tokens)
        ]
        finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        tail = [
            b"data: " + _dumps(finish) + b"\n\n",
            b"data: " + _dumps({"choices": [], "usage": usage}) + b"\n\n",
            b"data: [DONE]\n\n",
            b"data: " + _dumps({"error": {"message": "boom mid-stream", "type": "server_error"}}) + b"\n\n",
        ]
        return await self._stream(request, "text/event-stream", frames, tail)

    async def anthropic(self, request: web.Request) -> Any:
        body, early = await self._prelude(request, "anthropic")
        if early is not None:
            return early

        def ev(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: ".encode() + _dumps({"type": name, **data}) + b"\n\n"

        if not body.get("stream"):
            await asyncio.sleep(self.ttft_s)
            return web.json_response(
                {
                    "content": [{"type": "text", "text": "tok " * self.tokens}],
                    "usage": {"output_tokens": self.tokens},
                }
            )
        frames = [
            ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "tok "}})
            for _ in range(self.tokens)
        ]
        frames[0] = (
            ev("message_start", {"message": {"usage": {"input_tokens": 9}}}) + ev("ping", {}) + frames[0]
        )
        tail = [
            ev(
                "message_delta",
                {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": self.tokens}},
            ),
            ev("message_stop", {}),
            ev("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ]
        return await self._stream(request, "text/event-stream", frames, tail)

    async def gemini(self, request: web.Request) -> Any:
        _body, early = await self._prelude(request, "gemini")
        if early is not None:
            return early

        def chunk(text: str, finish: bool = False) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
            if finish:
                cand["finishReason"] = "STOP"
            return {
                "candidates": [cand],
                "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": self.tokens},
            }

        if request.match_info["call"].endswith(":generateContent"):
            await asyncio.sleep(self.ttft_s)
            return web.json_response(chunk("tok " * self.tokens, True))
        frames = [
            b"data: " + _dumps(chunk("tok ", i == self.tokens - 1)) + b"\r\n\r\n" for i in range(self.tokens)
        ]
        err = {"error": {"code": 503, "message": "unavailable", "status": "UNAVAILABLE"}}
        return await self._stream(
            request, "text/event-stream", frames, [b"data: " + _dumps(err) + b"\r\n\r\n"]
        )

    async def ollama(self, request: web.Request) -> Any:
        body, early = await self._prelude(request, "ollama")
        if early is not None:
            return early
        if not body.get("stream"):
            await asyncio.sleep(self.ttft_s)
            return web.json_response(
                {"message": {"role": "assistant", "content": "tok"}, "done": True, "eval_count": 3}
            )
        frames = [
            _dumps({"message": {"role": "assistant", "content": "tok "}, "done": False}) + b"\n"
            for _ in range(self.tokens)
        ]
        tail = [
            _dumps({"message": {"role": "assistant", "content": ""}, "done": True, "eval_count": self.tokens})
            + b"\n",
            _dumps({"error": "model crashed"}) + b"\n",
        ]
        return await self._stream(request, "application/x-ndjson", frames, tail)


def _error(provider: str, status: int) -> web.Response:
    if provider == "anthropic":
        kinds = {
            401: "authentication_error",
            429: "rate_limit_error",
            500: "api_error",
            529: "overloaded_error",
        }
        doc: dict[str, Any] = {
            "type": "error",
            "error": {"type": kinds.get(status, "api_error"), "message": "nope"},
        }
    elif provider == "gemini":
        names = {401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
        doc = {"error": {"code": status, "message": "nope", "status": names.get(status, "INTERNAL")}}
    elif provider == "ollama":
        doc = {"error": "nope"}
    else:
        kinds = {401: "invalid_request_error", 429: "requests", 500: "server_error", 503: "server_error"}
        doc = {
            "error": {
                "message": "nope",
                "type": kinds.get(status, "server_error"),
                "param": None,
                "code": None,
            }
        }
    return web.json_response(doc, status=status)


async def start(fake: Fake) -> TestServer:
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    return server
