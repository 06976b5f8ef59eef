"""`llmsim proxy` overhead, side by side: direct vs plain `mitmdump` (response streaming on) vs our
proxy in each capture mode, for SSE streams at 50/200/400 concurrent streams (TTFT 100 ms, ITL 20 ms,
50 tokens) and for small non-streaming requests (throughput and added p50 latency).

Layout on a 2-core machine: the proxy under test is pinned to core 0; the upstream (a minimal
aiohttp provider, plain HTTP and TLS) and the client both run on core 1.

    python -m bench proxy            # via `make bench`
    python -m bench.proxy            # this section alone
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import free_port, load_average, pct, pinned, pinned_process, port_ready, print_table

TTFT_MS, ITL_MS, TOKENS = 100.0, 20.0, 50
STREAM_LEVELS = (50, 200, 400)
REPEAT = 3
"""Runs per (path, streams); the table shows each column's median."""
SMALL_SECONDS = 3.0
SMALL_CONNECTIONS = 32
HOST = "api.openai.com"
CHUNK = (
    'data: {{"t":{t:.6f},"choices":[{{"index":0,"delta":{{"content":" tok"}},"finish_reason":null}}]}}\n\n'
)
"""A stream event stamped with the upstream's `perf_counter()` at write time (CLOCK_MONOTONIC, shared by
every process): the client subtracts it to get the delay added between upstream and client."""
SMALL = json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {
    "role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).encode()  # fmt: skip


# --- the upstream --------------------------------------------------------------------------------


def upstream_main(plain_port: int, tls_port: int, cert: str, key: str) -> None:
    """A minimal provider: SSE at absolute deadlines when `stream`, else a small JSON body at once."""
    import uvloop
    from aiohttp import web

    seen: dict[int, object] = {}
    """Every connection's transport (held, so that an id is never reused for a later one)."""
    stats = {"connections": 0, "tls_connections": 0, "tls_resumed": 0}

    def count(request: web.Request) -> None:
        """Count each new client connection once; for TLS ones, whether the session was resumed."""
        transport = request.transport
        if transport is None or id(transport) in seen:
            return
        seen[id(transport)] = transport
        stats["connections"] += 1
        tls = transport.get_extra_info("ssl_object")
        if tls is not None:
            stats["tls_connections"] += 1
            stats["tls_resumed"] += int(tls.session_reused)

    async def stats_route(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def handle(request: web.Request) -> web.StreamResponse:
        count(request)
        body = json.loads(await request.read())
        if not body.get("stream"):
            return web.Response(body=SMALL, content_type="application/json")
        n = int(body.get("max_tokens") or TOKENS)
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        for k in range(n):
            delay = start + TTFT_MS / 1000 + k * ITL_MS / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if k == 0:
                await response.prepare(request)
            await response.write(CHUNK.format(t=time.perf_counter()).encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handle)
        app.router.add_get("/stats", stats_route)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        await web.TCPSite(runner, "127.0.0.1", plain_port, backlog=2048).start()
        await web.TCPSite(runner, "127.0.0.1", tls_port, ssl_context=ctx, backlog=2048).start()
        await asyncio.Event().wait()

    uvloop.run(serve())


# --- the client ----------------------------------------------------------------------------------


class Route:
    """How the client reaches the upstream: directly, through a proxy (absolute-form or CONNECT+TLS),
    at the proxy as base URL, or at a TLS listener (host-alias)."""

    def __init__(self, kind: str, port: int, upstream_port: int, cafile: str | None = None) -> None:
        self.kind, self.port, self.upstream_port, self.cafile = kind, port, upstream_port, cafile

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.kind == "connect-tls":
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            await writer.start_tls(ssl.create_default_context(cafile=self.cafile), server_hostname=HOST)
            return reader, writer
        if self.kind == "tunnel":  # CONNECT to a host outside the scope: a raw relay to the TLS upstream
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            target = f"127.0.0.1:{self.upstream_port}"
            writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            await writer.start_tls(ssl.create_default_context(cafile=self.cafile), server_hostname=HOST)
            return reader, writer
        if self.kind in ("tls", "direct-tls"):
            ctx = ssl.create_default_context(cafile=self.cafile)
            return await asyncio.open_connection("127.0.0.1", self.port, ssl=ctx, server_hostname=HOST)
        return await asyncio.open_connection("127.0.0.1", self.port)

    def request(self, stream: bool, keep_alive: bool) -> bytes:
        body = json.dumps({"model": "bench", "stream": stream, "max_tokens": TOKENS,
                           "messages": [{"role": "user", "content": "benchmark"}]}).encode()  # fmt: skip
        target = "/v1/chat/completions"
        host = f"127.0.0.1:{self.port}"
        if self.kind == "absolute":
            target = f"http://127.0.0.1:{self.upstream_port}/v1/chat/completions"
            host = f"127.0.0.1:{self.upstream_port}"
        elif self.kind in ("connect-tls", "tls", "tunnel", "direct-tls"):
            host = HOST
        head = (f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer bench\r\nContent-Length: {len(body)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")  # fmt: skip
        return head.encode() + body


async def _one_stream(route: Route, start_at: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    delay = start_at - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    tokens: list[float] = []
    added: list[float] = []
    status = 0
    try:
        reader, writer = await route.open()
        sent = time.perf_counter()
        writer.write(route.request(stream=True, keep_alive=False))
        line = await reader.readline()
        status = int(line.split()[1])
        async for line in reader:
            if line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
                now = time.perf_counter()
                tokens.append(now)
                if line.startswith(b'data: {"t":'):
                    added.append(now - float(line[11 : line.index(b",")]))
            elif line.startswith(b"data: [DONE]"):
                break
        writer.close()
    except (OSError, ValueError, IndexError, ssl.SSLError):
        sent = time.perf_counter()
    return {"sent": sent, "tokens": tokens, "status": status, "added": added}


async def _small_worker(route: Route, until: float, latencies: list[float]) -> None:
    payload = route.request(stream=False, keep_alive=True)
    reader, writer = await route.open()
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        chunked = False
        for line in head.split(b"\r\n"):
            low = line.lower()
            if low.startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            elif low.startswith(b"transfer-encoding:") and b"chunked" in low:
                chunked = True
        if chunked:
            while True:
                size = int((await reader.readline()).strip(), 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.readexactly(length)
        latencies.append(time.perf_counter() - t0)
    writer.close()


def client_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("test", choices=["streams", "small", "sequential"])
    parser.add_argument("--kind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--cafile")
    parser.add_argument("--n", type=int, default=1)
    args = parser.parse_args(argv)
    import uvloop

    from bench.stream_client import raise_fd_limit

    raise_fd_limit()
    route = Route(args.kind, args.port, args.upstream_port, args.cafile)

    async def main() -> Any:
        if args.test == "streams":
            t0 = asyncio.get_running_loop().time() + 0.2
            step = 1.0 / args.n
            return await asyncio.gather(*(_one_stream(route, t0 + i * step) for i in range(args.n)))
        latencies: list[float] = []
        if args.test == "sequential":
            await _small_worker(route, time.perf_counter() + 1.5, latencies)
            return {"latencies": latencies[20:]}
        until = time.perf_counter() + SMALL_SECONDS
        await asyncio.gather(*(_small_worker(route, until, latencies) for _ in range(args.n)))
        return {"requests": len(latencies), "seconds": SMALL_SECONDS, "latencies": latencies}

    json.dump(uvloop.run(main()), sys.stdout)


# --- orchestration -------------------------------------------------------------------------------


def _process(
    args: Sequence[str], port: int, core: int
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    return pinned_process(args, port_ready(port), core, settle_s=0.3)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(test: str, route: Route, n: int) -> Any:
    cmd = [sys.executable, "-m", "bench.proxy", "client", test, "--kind", route.kind, "--port", str(route.port),
           "--upstream-port", str(route.upstream_port), "--n", str(n)]  # fmt: skip
    if route.cafile:
        cmd += ["--cafile", route.cafile]
    out = subprocess.run(cmd, capture_output=True, check=True, preexec_fn=pinned(1), timeout=600)
    return json.loads(out.stdout)


def _stream_row(name: str, streams: int, results: list[dict[str, Any]], cpu: float | None) -> dict[str, Any]:
    ok = [r for r in results if r["status"] == 200 and len(r["tokens"]) == TOKENS]
    ttft_err = [abs((r["tokens"][0] - r["sent"]) * 1000 - TTFT_MS) for r in ok]
    itl = np.concatenate([np.diff(r["tokens"]) * 1000 for r in ok]) if ok else np.array([])
    itl_err = np.abs(itl - ITL_MS)
    last = [(r["tokens"][-1] - r["sent"]) * 1000 for r in ok]
    added = [a * 1000 for r in ok for a in r.get("added", [])]
    first = [(r["tokens"][0] - r["sent"]) * 1000 for r in ok]
    return {
        "path": name, "streams": streams, "complete": f"{len(ok)}/{streams}",
        "TTFT p50 ms": pct(first, 50), "TTFT |err| p99 ms": pct(ttft_err, 99),
        "ITL |err| p50 ms": pct(itl_err, 50), "ITL |err| p99 ms": pct(itl_err, 99),
        "last-first ms": pct(np.subtract(last, first), 50),
        "upstream->client p50 ms": pct(added, 50) if added else None,
        "upstream->client p99 ms": pct(added, 99) if added else None,
        "proxy CPU %": None if cpu is None else round(cpu * 100, 1),
    }  # fmt: skip


PERTURB_ADDED_TTFT_MS = 5.0
"""perturb rows add this before the first event (and nothing to the gaps): every event then goes
through the perturbed relay and the shared deadline scheduler, at the upstream's own pace + 5 ms."""


def _profile(tmp: Path) -> Path:
    path = tmp / "bench-proxy.yaml"
    path.write_text(json.dumps({"seed": 1, "latency": {
        "ttftMs": {"type": "constant", "value": TTFT_MS}, "itlMs": {"type": "constant", "value": ITL_MS},
        "outputTokens": {"type": "constant", "value": TOKENS}}}))  # fmt: skip
    return path


def _perturb_profile(tmp: Path) -> Path:
    path = tmp / "bench-proxy-perturb.yaml"
    path.write_text(json.dumps({"seed": 1, "latency": {
        "ttftMs": {"type": "constant", "value": PERTURB_ADDED_TTFT_MS}, "itlMs": {"type": "constant", "value": 0}}}))  # fmt: skip
    return path


def _bench_ca(tmp: Path) -> tuple[str, str, str]:
    """A CA for the bench upstream (minted with mitmproxy's CertStore) and a leaf for api.openai.com."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from mitmproxy import certs

    store = certs.CertStore.from_store(tmp / "upstream-ca", "bench", 2048)
    entry = store.get_cert(HOST, [x509.DNSName(HOST)])
    cert, key = tmp / "up-cert.pem", tmp / "up-key.pem"
    cert.write_bytes(entry.cert.to_pem())
    key.write_bytes(entry.privatekey.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return str(tmp / "upstream-ca" / "bench-ca-cert.pem"), str(cert), str(key)


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Column-wise median of repeated runs (the shared 2-core machine is noisy); `runs` says how many."""
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, float | int) and not isinstance(value, bool) and key != "streams":
            values = [r[key] for r in rows if isinstance(r.get(key), float | int)]
            out[key] = float(np.median(values)) if values else None
    out["complete"] = "/".join(r["complete"].split("/")[0] for r in rows) + f" of {rows[0]['streams']}"
    out["runs"] = len(rows)
    return out


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    quick = bool(getattr(args, "quick", False))
    levels = (50, 200) if quick else STREAM_LEVELS
    repeat = 1 if quick else int(getattr(args, "proxy_repeat", REPEAT))
    levels = tuple(getattr(args, "proxy_levels", None) or levels)
    only: list[str] = list(getattr(args, "proxy_only", None) or [])
    small_only = bool(getattr(args, "proxy_small_only", False))
    rows: list[dict[str, Any]] = []
    small_rows: list[dict[str, Any]] = []
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        up_ca, up_cert, up_key = _bench_ca(tmp)
        up_plain, up_tls = free_port(), free_port()
        ca_dir = tmp / "proxy-ca"
        our_ca = str(ca_dir / "llmsim-ca-cert.pem")
        upstream_cmd = [py, "-m", "bench.proxy", "upstream", str(up_plain), str(up_tls), up_cert, up_key]

        def ours(mode: str) -> tuple[list[str], int, int]:
            profile = _perturb_profile(tmp) if mode == "perturb" else _profile(tmp)
            port, tls_port = free_port(), free_port()
            cmd = [py, "-m", "llmsim.cli.main", "proxy", "--mode", mode, "--listen", f"127.0.0.1:{port}",
                   "--admin", f"127.0.0.1:{free_port()}", "--ca-dir", str(ca_dir), "--log-level", "error",
                   "--intercept", f"127.0.0.1:{up_plain}", "--upstream", f"openai=http://127.0.0.1:{up_plain}",
                   "--resolve", f"{HOST}=127.0.0.1:{up_tls}", "--upstream-ca", up_ca,
                   "--tls-listen", f"127.0.0.1:{tls_port}", "--profile", str(profile)]  # fmt: skip
            return cmd, port, tls_port

        def mitmdump() -> tuple[list[str], int, int]:
            port = free_port()
            cmd = [str(Path(py).parent / "mitmdump"), "--listen-host", "127.0.0.1", "--listen-port", str(port),
                   "--set", "stream_large_bodies=1", "--set", f"confdir={tmp / 'mitm'}", "-q"]  # fmt: skip
            return cmd, port, port

        # (label, server factory or None for direct, route kind, use TLS port)
        paths: list[tuple[str, Any, str, bool]] = [
            ("direct", None, "direct", False),
            ("direct TLS", None, "direct-tls", False),
            ("mitmdump (stream_large_bodies=1), proxy", mitmdump, "absolute", False),
            ("llmsim proxy: proxy, plain HTTP", lambda: ours("passthrough"), "absolute", False),
            ("llmsim proxy: proxy, CONNECT+TLS", lambda: ours("passthrough"), "connect-tls", False),
            (
                "llmsim proxy: CONNECT tunnel (non-LLM host, raw relay)",
                lambda: ours("passthrough"),
                "tunnel",
                False,
            ),
            ("llmsim proxy: base-url", lambda: ours("passthrough"), "base", False),
            ("llmsim proxy: host-alias (TLS :443)", lambda: ours("passthrough"), "tls", True),
            ("llmsim proxy: simulate, CONNECT+TLS", lambda: ours("simulate"), "connect-tls", False),
            (
                "llmsim proxy: perturb +5 ms TTFT, proxy, plain HTTP",
                lambda: ours("perturb"),
                "absolute",
                False,
            ),
        ]
        with _process(upstream_cmd, up_tls, core=1) as upstream_proc:
            upstream = (upstream_proc.pid, up_plain)
            for label, factory, kind, use_tls in paths:
                if factory is None and kind == "direct-tls":
                    route = Route("direct-tls", up_tls, up_tls, up_ca)
                    if small_only:
                        small_rows.append(_small(label, route, None, upstream))
                    for n in () if small_only else levels:
                        runs = [
                            _stream_row(label, n, _client("streams", route, n), None) for _ in range(repeat)
                        ]
                        rows.append(_median_row(runs))
                    continue
                if factory is None:
                    route = Route("direct", up_plain, up_plain)
                    for n in () if small_only else levels:
                        runs = [
                            _stream_row(label, n, _client("streams", route, n), None) for _ in range(repeat)
                        ]
                        rows.append(_median_row(runs))
                    small_rows.append(_small(label, route, None, upstream))
                    continue
                if only and not any(word in label for word in only):
                    continue
                cmd, port, tls_port = factory()
                with _process(cmd, port, core=0) as proc:
                    if kind == "tunnel":
                        route = Route(kind, port, up_tls, up_ca)
                    else:
                        route = Route(kind, tls_port if use_tls else port, up_plain, our_ca)
                    for n in () if small_only else levels:
                        runs = []
                        for _ in range(repeat):
                            before, t0 = _cpu_seconds(proc.pid), time.monotonic()
                            results = _client("streams", route, n)
                            cpu = (_cpu_seconds(proc.pid) - before) / (time.monotonic() - t0)
                            runs.append(_stream_row(label, n, results, cpu))
                        rows.append(_median_row(runs))
                    if "simulate" not in label and "perturb" not in label and kind != "tunnel":
                        small_rows.append(_small(label, route, proc.pid, upstream))
    print_table(
        f"Proxy streaming: TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, {TOKENS} tokens, starts spread over 1 s; "
        f"proxy pinned to core 0, upstream + client on core 1; median of {repeat} runs per row",
        rows,
    )
    direct = next((r for r in small_rows if r["path"] == "direct"), None)
    if direct is not None:
        for r in small_rows:
            r["added p50 ms"] = round(r["p50 ms"] - direct["p50 ms"], 3)
    mitm = next((r for r in small_rows if r["path"].startswith("mitmdump")), None)
    if mitm is not None:
        for r in small_rows:
            r["vs mitmdump"] = f"{r['req/s'] / mitm['req/s']:.2f}x"
    print_table(
        f"Small non-streaming requests: {SMALL_CONNECTIONS} keep-alive connections for {SMALL_SECONDS:g} s; "
        "p50 from one sequential connection",
        small_rows,
    )
    return rows + small_rows


def _upstream_stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        stats: dict[str, int] = json.loads(response.read())
    return stats


def _small(label: str, route: Route, pid: int | None, upstream: tuple[int, int]) -> dict[str, Any]:
    """32 keep-alive connections for a few seconds: throughput, CPU per request of the proxy and
    of the upstream, and the upstream's new connections (TLS: how many resumed their session)."""
    upstream_pid, stats_port = upstream
    stats0 = _upstream_stats(stats_port)
    before, up_before, t0 = (_cpu_seconds(pid) if pid else 0.0), _cpu_seconds(upstream_pid), time.monotonic()
    result = _client("small", route, SMALL_CONNECTIONS)
    wall = time.monotonic() - t0
    cpu_s = _cpu_seconds(pid) - before if pid else None
    up_cpu_s = _cpu_seconds(upstream_pid) - up_before
    stats1 = _upstream_stats(stats_port)
    seq = _client("sequential", route, 1)["latencies"]
    n = max(result["requests"], 1)
    return {
        "path": label,
        "req/s": round(result["requests"] / result["seconds"], 1),
        "p50 ms": round(pct(seq, 50) * 1000, 3),
        "p99 ms (loaded)": round(pct(result["latencies"], 99) * 1000, 2),
        "proxy CPU %": None if cpu_s is None else round(cpu_s / wall * 100, 1),
        "proxy CPU us/req": None if cpu_s is None else round(cpu_s / n * 1e6, 1),
        "upstream CPU us/req": round(up_cpu_s / n * 1e6, 1),
        "upstream connections": stats1["connections"] - stats0["connections"],
        "of them TLS (resumed)": f"{stats1['tls_connections'] - stats0['tls_connections']} "
        f"({stats1['tls_resumed'] - stats0['tls_resumed']})",
        "load": load_average(),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "upstream":
        upstream_main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2:])
    else:
        cli = argparse.ArgumentParser(prog="python -m bench.proxy")
        cli.add_argument("--quick", action="store_true")
        cli.add_argument("--levels", type=int, nargs="+", dest="proxy_levels")
        cli.add_argument(
            "--only", nargs="+", dest="proxy_only", help="run only paths whose label contains one of these"
        )
        cli.add_argument("--repeat", type=int, default=REPEAT, dest="proxy_repeat")
        cli.add_argument("--small-only", action="store_true", dest="proxy_small_only",
                         help="only the small-request table (CPU per request, upstream connections)")  # fmt: skip
        run(cli.parse_args())
