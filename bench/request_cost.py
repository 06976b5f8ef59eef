"""What a request costs: `llmsim serve` against the reference streamer, side by side in one run.

* non-streaming: 32 keep-alive connections sending small chat completions (TTFT 0, 16 tokens)
  back to back for a few seconds: requests/s;
* streaming ceiling: 64 keep-alive connections, streams of 50 tokens at TTFT 0 / ITL 0: tokens/s;

each with the server's CPU (its process tree: every worker) per request. Server pinned to core 0
(or, with `--workers 2`, unpinned), client (`bench.keepalive_client`) on core 1. Rounds alternate
the servers so that a neighbour's burst on a shared machine hits both; the table gives each
round, and the summary the median ratio.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import peers
from bench.common import (
    free_port,
    load_average,
    pct,
    pinned,
    pinned_process,
    port_ready,
    print_table,
    tree_cpu_seconds,
)

NONSTREAM = {"connections": 32, "tokens": 16}
CEILING = {"connections": 64, "tokens": 50}


def profile_file(tmp: Path, ttft_ms: float, itl_ms: float, tokens: int) -> Path:
    path = tmp / f"cost-{ttft_ms:g}-{itl_ms:g}-{tokens}.json"
    path.write_text(json.dumps({"seed": 1, "latency": {
        "ttftMs": {"type": "constant", "value": ttft_ms}, "itlMs": {"type": "constant", "value": itl_ms},
        "outputTokens": {"type": "constant", "value": tokens}}}))  # fmt: skip
    return path


Server = tuple[str, list[str], dict[str, str]]
"""(label, argv without the port, extra environment)."""


def servers(
    profile: Path,
    *,
    workers: int = 1,
    baseline: str | None = None,
    stream: bool = False,
    tokens: int = 16,
    ttft_ms: float = 0,
    itl_ms: float = 0,
) -> list[Server]:
    """llmsim serve (and, with `baseline`, the llmsim sources in that directory), the reference, and
    the installed peers that can express the test (`bench.peers`)."""
    serve = [
        sys.executable,
        "-m",
        "llmsim.cli.main",
        "serve",
        "--profile",
        str(profile),
        "--log-level",
        "warning",
    ]
    out: list[Server] = [("llmsim serve", serve, {})]
    if baseline:
        out.append(("llmsim serve (baseline)", serve, {"PYTHONPATH": baseline}))
    if workers > 1:
        out.append((f"llmsim serve --workers {workers}", [*serve, "--workers", str(workers)], {}))
    if not stream and peers.FAKELLM.exists():  # fakellm streams with a fixed 10 ms per word: no ITL 0
        config = peers.fakellm_config(profile.parent, tokens)
        out.append(("fakellm 0.3.5 (uvicorn)", [str(peers.FAKELLM), "serve", "--config", str(config)], {}))
    if peers.LLMD.exists():
        out.append(("llm-d-inference-sim", [str(peers.LLMD), "--model", "bench", "--mode", "random",
                                            "--time-to-first-token", f"{ttft_ms:g}",
                                            "--inter-token-latency", f"{itl_ms:g}"], {}))  # fmt: skip
    ref = [
        sys.executable,
        "-m",
        "bench.reference_streamer",
        "--ttft-ms",
        f"{ttft_ms:g}",
        "--itl-ms",
        f"{itl_ms:g}",
    ]
    out.append(("reference aiohttp", ref, {}))
    return out


def client(url: str, connections: int, seconds: float, stream: bool, tokens: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.keepalive_client", "--url", url, "--connections", str(connections),
            "--seconds", str(seconds), "--max-tokens", str(tokens)] + (["--stream"] if stream else [])  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, preexec_fn=pinned(1), timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"keepalive client failed: {proc.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def measure(server: Server, *, stream: bool, seconds: float) -> dict[str, Any]:
    name, argv, env = server
    core = None if "--workers" in argv else 0
    spec = CEILING if stream else NONSTREAM
    port = free_port()
    with pinned_process(
        [*argv, "--port", str(port)], port_ready(port), core=core, env=env, settle_s=0.3
    ) as proc:
        cpu0 = tree_cpu_seconds(proc.pid)
        load = load_average()
        r = client(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            spec["connections"],
            seconds,
            stream,
            spec["tokens"],
        )
        cpu = tree_cpu_seconds(proc.pid) - cpu0
    ok = r["responses"] - r["errors"]
    return {
        "server": name,
        "load": load,
        "requests": r["responses"],
        "errors": r["errors"],
        "req/s": r["responses"] / r["seconds"],
        "tokens/s": r["tokens"] / r["seconds"] if stream else None,
        "server CPU %": 100 * cpu / r["seconds"],
        "server CPU us/req": 1e6 * cpu / max(ok, 1),
        "client CPU %": 100 * r["client_cpu_s"] / r["seconds"],
    }


STREAMS = {"streams": 100, "stagger_s": 1.0, "tokens": 200, "ttft_ms": 100.0, "itl_ms": 20.0}


def measure_streams(server: Server) -> dict[str, Any]:
    """100 streams (TTFT 100 ms, ITL 20 ms, 200 tokens, starts over 1 s): server CPU per stream."""
    name, argv, env = server
    port = free_port()
    with pinned_process(
        [*argv, "--port", str(port)], port_ready(port), core=0, env=env, settle_s=0.3
    ) as proc:
        load, cpu0, t0 = load_average(), tree_cpu_seconds(proc.pid), time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "bench.stream_client", "--url", f"http://127.0.0.1:{port}",
                              "--streams", str(STREAMS["streams"]), "--stagger", str(STREAMS["stagger_s"]),
                              "--max-tokens", str(STREAMS["tokens"])],
                             capture_output=True, preexec_fn=pinned(1), timeout=120)  # fmt: skip
        wall = time.perf_counter() - t0
        cpu = tree_cpu_seconds(proc.pid) - cpu0
    results = json.loads(run.stdout)
    ok = [r for r in results if r["status"] == 200 and len(r["tokens"]) == STREAMS["tokens"]]
    itl = [
        abs(b - a - STREAMS["itl_ms"] / 1000) * 1000 for r in ok for a, b in itertools.pairwise(r["tokens"])
    ]
    return {"server": name, "load": load, "complete": f"{len(ok)}/{len(results)}",
            "server CPU %": 100 * cpu / wall, "server CPU ms/stream": 1000 * cpu / max(len(ok), 1),
            "ITL |err| p99 ms": pct(itl, 99)}  # fmt: skip


def compare(title: str, rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Print each round's rows and a summary of the median ratio against the reference."""
    print_table(title, rows)
    ref = [r[key] for r in rows if r["server"].startswith("reference")]
    summary = []
    for name in dict.fromkeys(r["server"] for r in rows):
        mine = [r[key] for r in rows if r["server"] == name]
        ratios = [m / f for m, f in zip(mine, ref, strict=False) if f]
        entry = {"server": name, f"median {key}": statistics.median(mine),
                 "ratio vs reference (per round)": ", ".join(f"{x:.2f}" for x in ratios),
                 "median ratio": statistics.median(ratios) if ratios else None}  # fmt: skip
        cost = "server CPU us/req"
        if key != cost and cost in rows[0]:  # the steadiest figure on a shared machine
            costs = [r[cost] for r in rows if r["server"] == name]
            ref_costs = [r[cost] for r in rows if r["server"].startswith("reference")]
            entry[f"median {cost}"] = statistics.median(costs)
            entry["CPU/req vs reference"] = statistics.median(
                c / f for c, f in zip(costs, ref_costs, strict=False)
            )
        summary.append(entry)
    print_table(f"{title}: summary", summary)
    return summary


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rounds = 1 if args.quick else 3
    seconds = 2.0 if args.quick else 4.0
    workers = getattr(args, "workers", 1)
    out: list[dict[str, Any]] = []
    for label, path in (("fakellm", peers.FAKELLM), ("llm-d-inference-sim", peers.LLMD)):
        if not path.exists():
            print(f"(peer {label} not installed at {path}: `python -m bench.peers install`; left out)")
    with tempfile.TemporaryDirectory() as tmpdir:
        for stream, key, title in (
            (False, "req/s", f"Non-streaming: {NONSTREAM['connections']} keep-alive connections, "
                             f"{NONSTREAM['tokens']} tokens, TTFT 0, {seconds:g} s per round"),
            (True, "tokens/s", f"Streaming ceiling: {CEILING['connections']} keep-alive connections, "
                               f"{CEILING['tokens']}-token streams, TTFT 0 / ITL 0, {seconds:g} s per round"),
        ):  # fmt: skip
            spec = CEILING if stream else NONSTREAM
            profile = profile_file(Path(tmpdir), 0, 0, spec["tokens"])
            rows = []
            for _ in range(rounds):
                for server in servers(profile, workers=workers, baseline=getattr(args, "baseline", None),
                                      stream=stream, tokens=spec["tokens"]):  # fmt: skip
                    rows.append(measure(server, stream=stream, seconds=seconds))
            out += compare(title, rows, key)
        profile = profile_file(Path(tmpdir), STREAMS["ttft_ms"], STREAMS["itl_ms"], STREAMS["tokens"])
        rows = []
        for _ in range(rounds):
            for server in servers(profile, baseline=getattr(args, "baseline", None), stream=True,
                                  ttft_ms=STREAMS["ttft_ms"], itl_ms=STREAMS["itl_ms"]):  # fmt: skip
                rows.append(measure_streams(server))
        out += compare(f"CPU per stream: {STREAMS['streams']} streams, TTFT {STREAMS['ttft_ms']:g} ms / ITL "
                       f"{STREAMS['itl_ms']:g} ms, {STREAMS['tokens']} tokens, starts over {STREAMS['stagger_s']:g} s",
                       rows, "server CPU ms/stream")  # fmt: skip
    return out
