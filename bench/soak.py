"""`make soak`: hold N concurrent streams against `llmsim serve` for a long time and fail on a
lost or truncated stream, or on resident memory growing after warm-up.

    python -m bench.soak                                  # the full soak: 600 s, 300 streams
    python -m bench.soak --duration 60 --streams 50       # a short run that proves it works

The server is `llmsim serve --profile examples/profiles/fixed-latency.yaml` started from its CLI
(exactly 64 tokens per reply, so a stream with fewer content chunks or no `[DONE]` is truncated).
This process is the client: N workers, each opening one connection per stream, back to back.
Every `--sample-s` seconds the server's VmRSS is read from /proc. After `--warmup-s`, the first
samples set the baseline; the run fails when the mean of the last samples exceeds it by more than
`--max-rss-growth` (5 %), or when any stream was lost (no connection, not a 200, cut) or
truncated. Prints one JSON summary; exits 1 on failure. Not part of `make test` (it takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "examples" / "profiles" / "fixed-latency.yaml"
TOKENS = 64
"""Content chunks every stream of the fixed-latency profile carries."""


@dataclass
class Tally:
    streams: int = 0
    lost: int = 0
    truncated: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_mb: list[float] = field(default_factory=list)

    def fail(self, kind: str, reason: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        self.errors[reason] = self.errors.get(reason, 0) + 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _payload(port: int) -> bytes:
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "soak"}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer soak\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body.encode()


async def _stream(port: int, payload: bytes, tally: Tally) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except (OSError, TimeoutError) as exc:
        tally.fail("lost", f"connect: {type(exc).__name__}")
        return
    try:
        writer.write(payload)
        status_line = await asyncio.wait_for(reader.readline(), 30)
        if not status_line.startswith(b"HTTP/1.1 200"):
            tally.fail("lost", f"status: {status_line[:20]!r}")
            return
        content, done = 0, False
        async with asyncio.timeout(60):
            async for line in reader:
                if line.startswith(b"data: [DONE]"):
                    done = True
                    break
                if line.startswith(b"data: {") and b'"content":"' in line and b'"content":""' not in line:
                    content += 1
        if not done:
            tally.fail("lost", "no [DONE]")
        elif content != TOKENS:
            tally.fail("truncated", f"{content} content chunks")
        else:
            tally.streams += 1
    except (OSError, TimeoutError, ValueError) as exc:
        tally.fail("lost", f"read: {type(exc).__name__}")
    finally:
        writer.close()


async def _worker(port: int, payload: bytes, tally: Tally, until: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        await _stream(port, payload, tally)


async def _sampler(pid: int, tally: Tally, every_s: float, until: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        tally.rss_mb.append(round(_rss_mb(pid), 1))
        await asyncio.sleep(every_s)


async def _drive(args: argparse.Namespace, port: int, pid: int, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + args.duration
    payload = _payload(port)
    workers = [_worker(port, payload, tally, until) for _ in range(args.streams)]
    await asyncio.gather(_sampler(pid, tally, args.sample_s, until), *workers)


def _verdict(args: argparse.Namespace, tally: Tally, server_log: str) -> dict[str, object]:
    skip = int(args.warmup_s / args.sample_s)
    after = tally.rss_mb[skip:]
    window = max(1, min(3, len(after) // 3))
    baseline = sum(after[:window]) / window if after else float("nan")
    final = sum(after[-window:]) / window if after else float("nan")
    growth = (final - baseline) / baseline if after else float("nan")
    failures = []
    if tally.lost or tally.truncated:
        failures.append(f"{tally.lost} lost and {tally.truncated} truncated streams")
    if "Traceback" in server_log or " ERROR " in server_log:
        failures.append("the server logged errors: " + server_log[-1500:])
    if not after:
        failures.append("no memory samples after warm-up (raise --duration)")
    elif growth > args.max_rss_growth:
        failures.append(f"resident memory grew {growth:.1%} after warm-up (limit {args.max_rss_growth:.0%})")
    return {
        "ok": not failures,
        "failures": failures,
        "duration_s": args.duration,
        "concurrency": args.streams,
        "rss_baseline_mb": round(baseline, 1),
        "rss_final_mb": round(final, 1),
        "rss_growth": round(growth, 4),
        **asdict(tally),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--streams", type=int, default=300, help="concurrent streams (default 300)")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="seconds before the RSS baseline (60)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples (5)")
    parser.add_argument("--max-rss-growth", type=float, default=0.05, help="allowed RSS growth (0.05)")
    args = parser.parse_args()
    if args.warmup_s >= args.duration:
        parser.error("--warmup-s must be shorter than --duration")
    port = _free_port()
    cmd = [sys.executable, "-m", "llmsim.cli.main", "serve", "--profile", str(PROFILE), "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    log = tempfile.NamedTemporaryFile(prefix="llmsim-soak-", suffix=".log", delete=False)  # noqa: SIM115
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))
    tally = Tally()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    print("llmsim serve did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        asyncio.run(_drive(args, port, server.pid, tally))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    server_log = Path(log.name).read_text(encoding="utf-8", errors="replace")
    Path(log.name).unlink()
    verdict = _verdict(args, tally, server_log)
    verdict["server_exit"] = server.returncode
    print(json.dumps(verdict, indent=2))
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
