"""Capacity of `llmsim serve` with one and two workers: the most concurrent streams held within
ITL p99 |err| <= 5 ms (TTFT 100 ms, ITL 20 ms, 400 tokens; starts spread over 4 s, so every
stream of a step runs at once for the last 4 s).

One worker is pinned to core 0 (the client to core 1, as in `bench.serve_timing`); two workers
cannot be pinned away from the client on a 2-core machine, so the client's CPU is reported beside
every row: where it nears a core, the client limits the figure as much as the server.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import free_port, load_average, pct, pinned, print_table, server_process, tree_cpu_seconds

TTFT_MS, ITL_MS, TOKENS, STAGGER_S = 100.0, 20.0, 400, 4.0
LIMIT_MS = 5.0
STEPS = (50, 100, 200, 300, 500, 750, 1000, 1500, 2000)


def _client_run(url: str, streams: int) -> tuple[list[dict[str, Any]], float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "bench.stream_client", "--url", url, "--streams", str(streams),
                           "--stagger", str(STAGGER_S), "--max-tokens", str(TOKENS)],
                          capture_output=True, preexec_fn=pinned(1), timeout=600)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"stream client failed: {proc.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(proc.stdout), cpu


def step(profile: Path, workers: int, streams: int) -> dict[str, Any]:
    port = free_port()
    argv = ["-m", "llmsim.cli.main", "serve", "--profile", str(profile), "--log-level", "warning",
            "--workers", str(workers), "--port", str(port)]  # fmt: skip
    core = 0 if workers == 1 else None
    with server_process(argv, f"http://127.0.0.1:{port}/healthz", core=core) as proc:
        time.sleep(0.5 if workers == 1 else 1.0)  # every worker listening
        load, cpu0, t0 = load_average(), tree_cpu_seconds(proc.pid), time.perf_counter()
        results, client_cpu = _client_run(f"http://127.0.0.1:{port}", streams)
        wall = time.perf_counter() - t0
        server_cpu = tree_cpu_seconds(proc.pid) - cpu0
    ok = [r for r in results if r["status"] == 200 and len(r["tokens"]) == TOKENS]
    itl = (
        np.abs(np.concatenate([np.diff(r["tokens"]) * 1000 - ITL_MS for r in ok]))
        if ok
        else np.array([np.inf])
    )
    ttft = [abs((r["tokens"][0] - r["sent"]) * 1000 - TTFT_MS) for r in ok]
    p99 = pct(itl, 99)
    return {"workers": workers, "streams": streams, "complete": f"{len(ok)}/{streams}",
            "TTFT |err| p99 ms": pct(ttft, 99), "ITL |err| p50 ms": pct(itl, 50), "ITL |err| p99 ms": p99,
            "holds 5 ms": "yes" if p99 <= LIMIT_MS and len(ok) == streams else "no",
            "server CPU %": 100 * server_cpu / wall, "client CPU %": 100 * client_cpu / wall, "load": load}  # fmt: skip


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    steps = STEPS[:3] if args.quick else STEPS
    with tempfile.TemporaryDirectory() as tmpdir:
        profile = Path(tmpdir) / "scaling.json"
        profile.write_text(json.dumps({"seed": 1, "latency": {
            "ttftMs": {"type": "constant", "value": TTFT_MS}, "itlMs": {"type": "constant", "value": ITL_MS},
            "outputTokens": {"type": "constant", "value": TOKENS}}}))  # fmt: skip
        capacity: dict[int, int] = {}
        for workers in (1, 2):
            failures = 0
            for streams in steps:
                row = step(profile, workers, streams)
                rows.append(row)
                if row["holds 5 ms"] == "yes":
                    capacity[workers] = streams
                    failures = 0
                else:
                    failures += 1
                    if failures == 2:  # two failing steps in a row: past the capacity
                        break
    print_table(f"Capacity: streams held at ITL p99 |err| <= {LIMIT_MS:g} ms (TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, "
                f"{TOKENS} tokens, starts over {STAGGER_S:g} s)", rows)  # fmt: skip
    one, two = capacity.get(1, 0), capacity.get(2, 0)
    print(f"\ncapacity: 1 worker {one} streams, 2 workers {two} streams"
          + (f" ({two / one:.2f}x; target >= 1.6x)" if one else ""))  # fmt: skip
    return rows
