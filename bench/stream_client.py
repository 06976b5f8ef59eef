"""A lean streaming client for benchmarks: raw HTTP/1.1 over asyncio streams, one connection per stream.

Run as a separate process (pinned to its own core) so the server under test has a core to itself:

    python -m bench.stream_client --url http://127.0.0.1:8080 --streams 1000 --stagger 1.0

Prints one JSON object: per-stream send times and token arrival times (perf_counter seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def request_bytes(host: str, port: int, path: str, max_tokens: int) -> bytes:
    body = json.dumps({"model": "bench", "stream": True, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "benchmark"}]}).encode()  # fmt: skip
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer bench\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def one(host: str, port: int, payload: bytes, start_at: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    delay = start_at - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    tokens: list[float] = []
    status = 0
    sent = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        return {"sent": sent, "tokens": tokens, "status": -1, "error": repr(exc)}
    sent = time.perf_counter()
    writer.write(payload)
    try:
        line = await reader.readline()
        status = int(line.split()[1])
        async for line in reader:
            if line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
                tokens.append(time.perf_counter())
            elif line.startswith(b"data: [DONE]"):
                break
    except OSError as exc:
        return {"sent": sent, "tokens": tokens, "status": -1, "error": repr(exc)}
    finally:
        writer.close()
    return {"sent": sent, "tokens": tokens, "status": status}


async def run(url: str, streams: int, stagger: float, max_tokens: int, path: str) -> list[dict[str, object]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = request_bytes(host, port, path, max_tokens)
    t0 = asyncio.get_running_loop().time() + 0.2
    step = stagger / max(streams, 1)
    return list(await asyncio.gather(*(one(host, port, payload, t0 + i * step) for i in range(streams))))


def raise_fd_limit() -> None:
    """One socket per stream: lift the soft open-files limit to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument(
        "--stagger", type=float, default=0.0, help="spread stream starts over this many seconds"
    )
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--path", default="/v1/chat/completions")
    args = parser.parse_args()
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(run(args.url, args.streams, args.stagger, args.max_tokens, args.path))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
