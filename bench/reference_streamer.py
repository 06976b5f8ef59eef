"""The reference: a minimal aiohttp SSE streamer with no simulation logic at all.

It answers every streamed POST with TTFT, then `max_tokens` small SSE chunks at absolute deadlines
(ITL apart), then [DONE] — the floor any Python simulator on aiohttp can reach; a request with
`"stream": false` gets one chat.completion JSON body of `max_tokens` tokens at the last deadline.

    python -m bench.reference_streamer --port 9000 --ttft-ms 100 --itl-ms 20 [--no-uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}\n\n'


def completion(n: int) -> bytes:
    """A chat.completion body of `n` tokens, about the size of llmsim's."""
    return json.dumps({"id": "chatcmpl-ref", "object": "chat.completion", "created": 0, "model": "bench",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": " tok" * n},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}},
                      separators=(",", ":")).encode()  # fmt: skip


def make_app(ttft: float, itl: float) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        n = int(body.get("max_tokens") or 100)
        loop = asyncio.get_running_loop()
        start = loop.time()
        if not body.get("stream"):
            delay = start + ttft + (n - 1) * itl - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            return web.Response(body=completion(n), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        for k in range(n):
            delay = start + ttft + k * itl - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if k == 0:
                await response.prepare(request)
            await response.write(CHUNK)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=100)
    parser.add_argument("--itl-ms", type=float, default=20)
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    from bench.stream_client import raise_fd_limit

    raise_fd_limit()
    if not args.no_uvloop:
        import uvloop

        uvloop.install()
    web.run_app(
        make_app(args.ttft_ms / 1000, args.itl_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        backlog=4096,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
