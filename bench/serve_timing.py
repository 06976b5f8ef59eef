"""Timing accuracy and throughput of `llmsim serve` vs a minimal aiohttp SSE streamer, in one run.

For 1, 100 and 1,000 concurrent streams (TTFT 100 ms, ITL 20 ms, 200 tokens; starts spread over
1 s) we report |achieved - configured| p50/p99 for TTFT and ITL; then the chunks/s ceiling at ITL 0.
Server pinned to core 0, client (bench.stream_client) in its own process on core 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import free_port, load_average, pct, pinned, print_table, server_process, tree_cpu_seconds

TTFT_MS, ITL_MS = 100.0, 20.0


def _profile(tmp: Path, ttft_ms: float, itl_ms: float, tokens: int) -> Path:
    path = tmp / f"bench-{ttft_ms:g}-{itl_ms:g}.yaml"
    path.write_text(json.dumps({"seed": 1, "latency": {
        "ttftMs": {"type": "constant", "value": ttft_ms}, "itlMs": {"type": "constant", "value": itl_ms},
        "outputTokens": {"type": "constant", "value": tokens}}}))  # fmt: skip
    return path


def _servers(
    tmp: Path, ttft_ms: float, itl_ms: float, tokens: int, loops: list[str]
) -> list[tuple[str, list[str]]]:
    profile = _profile(tmp, ttft_ms, itl_ms, tokens)
    out = []
    for loop in loops:
        flag = ["--no-uvloop"] if loop == "asyncio" else []
        out.append(
            (
                f"llmsim serve ({loop})",
                [
                    "-m",
                    "llmsim.cli.main",
                    "serve",
                    "--profile",
                    str(profile),
                    "--log-level",
                    "warning",
                    *flag,
                ],
            )
        )
        out.append(
            (
                f"reference aiohttp ({loop})",
                ["-m", "bench.reference_streamer", "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), *flag],
            )
        )
    return out


def _client(url: str, streams: int, stagger: float, tokens: int) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "bench.stream_client", "--url", url, "--streams", str(streams),
                           "--stagger", str(stagger), "--max-tokens", str(tokens)],
                          capture_output=True, preexec_fn=pinned(1), timeout=600)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"stream client failed: {proc.stderr.decode()[-2000:]}")
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


SCENARIOS = (
    # (label, streams, starts spread over s, tokens per stream)
    ("1", 1, 0.0, 200),
    ("100", 100, 1.0, 200),
    ("1000 burst", 1000, 1.0, 200),
    ("1000 steady", 1000, 5.0, 400),
)
"""`burst`: 1,000 arrivals within 1 s (admission-bound); `steady`: 200 arrivals/s for 5 s into
8 s streams, so 1,000 streams run concurrently at the end of the ramp (streaming-bound)."""


def accuracy(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    scenarios = [s for s in SCENARIOS if s[1] in args.streams]
    with tempfile.TemporaryDirectory() as tmpdir:
        for label, streams, stagger, tokens in scenarios:
            for name, cmd in _servers(Path(tmpdir), TTFT_MS, ITL_MS, tokens, args.loops):
                port = free_port()
                with server_process([*cmd, "--port", str(port)], f"http://127.0.0.1:{port}/healthz") as proc:
                    load, cpu0, t0 = load_average(), tree_cpu_seconds(proc.pid), time.perf_counter()
                    results = _client(f"http://127.0.0.1:{port}", streams, stagger, tokens)
                    cpu_pct = 100 * (tree_cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - t0)
                ok = [r for r in results if r["status"] == 200 and len(r["tokens"]) == tokens]
                ttft_err = [abs((r["tokens"][0] - r["sent"]) * 1000 - TTFT_MS) for r in ok]
                itl_err = (
                    np.abs(np.concatenate([np.diff(r["tokens"]) * 1000 - ITL_MS for r in ok]))
                    if ok
                    else np.array([])
                )
                rows.append({"streams": label, "server": name, "complete": f"{len(ok)}/{streams}",
                             "TTFT |err| p50 ms": pct(ttft_err, 50), "TTFT |err| p99 ms": pct(ttft_err, 99),
                             "ITL |err| p50 ms": pct(itl_err, 50), "ITL |err| p99 ms": pct(itl_err, 99),
                             "server CPU %": cpu_pct, "load": load})  # fmt: skip
    print_table(
        f"Timing accuracy: TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms (burst: starts over 1 s, 200 tokens; "
        "steady: starts over 5 s, 400 tokens)",
        rows,
    )
    return rows


def ceiling(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tokens, streams = 2000, 100
    with tempfile.TemporaryDirectory() as tmpdir:
        for name, cmd in _servers(Path(tmpdir), 0.0, 0.0, tokens, ["uvloop"]):
            port = free_port()
            with server_process([*cmd, "--port", str(port)], f"http://127.0.0.1:{port}/healthz"):
                results = _client(f"http://127.0.0.1:{port}", streams, 0.0, tokens)
            chunks = sum(len(r["tokens"]) for r in results)
            start = min(r["sent"] for r in results)
            end = max(r["tokens"][-1] for r in results if r["tokens"])
            rows.append(
                {
                    "server": name,
                    "streams": streams,
                    "tokens": chunks,
                    "seconds": end - start,
                    "chunks/s": chunks / (end - start),
                }
            )
    base = rows[-1]["chunks/s"]
    for row in rows:
        row["vs reference"] = f"{row['chunks/s'] / base:.0%}"
    print_table(f"Streaming ceiling at ITL 0 ({streams} streams x {tokens} tokens)", rows)
    return rows


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    return accuracy(args) + ceiling(args)
