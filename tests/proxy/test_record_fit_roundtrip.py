"""The round trip a user makes: record real traffic with `llmsim proxy --record`, fit a profile
with `llmsim profile fit`, serve the fit, and get the same TTFT, ITL and output lengths back.

Here the "real" provider is `llmsim serve` with known distributions; every command is started as
users start it. What is compared, and the tolerances:

* The recording is truthful: its output lengths are exactly the served token counts (only
  content-bearing events count: no role, finish, usage or `[DONE]` chunk), and its ITL sample
  follows the known distribution.
* The fit reproduces the recording: TTFT, ITL and output lengths recorded from the fitted
  server follow those recorded from the original.

Distributions are compared by their CDFs at the 10th..90th percentiles. The vertical tolerance is
the Dvoretzky-Kiefer-Wolfowitz bound, sup|F_n - F| <= sqrt(ln(2/alpha) / 2n) with probability
1 - alpha (alpha = 1e-3 per comparison), summed over both samples for two-sample comparisons. The
horizontal tolerance, TIMING_SLACK_MS, is the measurement's own timing error (uvloop's clock has
millisecond resolution; loopback, the proxy's reads and two event loops on a shared 2-core
machine add a few), not sampling error.

One more measurement effect widens the ITL bands: an event loop running late (the machine is
shared) delivers two tokens in one read, which measures one gap as ~0 ms and the next as the sum
of both. That moves at most twice the share of ~0 ms gaps, `merged`, of the CDF at any point, so
an ITL band is widened by 2 * merged of each sample (measured, not assumed; the ITL is 25 ms so
that it stays small, and `merged` itself is bounded well below what counting non-content events
would give).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow

REQUESTS = 150
CONCURRENCY = 10
ALPHA = 1e-3
TIMING_SLACK_MS = 3.0
KNOWN = {
    "seed": 5,
    "latency": {
        "ttftMs": {"type": "lognormal", "median": 80, "sigma": 0.3},
        "itlMs": {"type": "lognormal", "median": 25, "sigma": 0.3},
        "outputTokens": {"type": "uniform", "low": 4, "high": 12},
    },
}
QS = (0.1, 0.25, 0.5, 0.75, 0.9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], ready_url: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "llmsim.cli.main", *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        self.started.append(proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(ready_url, timeout=0.5).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{args[0]} did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            time.sleep(0.1)

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    for proc in reversed(procs.started):
        procs.stop(proc)


def record_through_proxy(procs: Processes, tmp_path: Path, profile: Path, tag: str) -> list[dict[str, Any]]:
    """Serve `profile`, send REQUESTS streamed chats through `llmsim proxy --record` in front of
    it, and return the recorded lines."""
    serve_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    serve = procs.start(["serve", "--profile", str(profile), "--port", str(serve_port)],
                        f"http://127.0.0.1:{serve_port}/readyz")  # fmt: skip
    record = tmp_path / f"{tag}.jsonl"
    proxy = procs.start(["proxy", "--mode", "passthrough", "--listen", f"127.0.0.1:{proxy_port}",
                         "--admin", f"127.0.0.1:{admin_port}", "--ca-dir", str(tmp_path / "ca"),
                         "--upstream", f"openai=http://127.0.0.1:{serve_port}", "--record", str(record)],
                        f"http://127.0.0.1:{admin_port}/readyz")  # fmt: skip
    asyncio.run(drive(f"http://127.0.0.1:{proxy_port}"))
    deadline = time.monotonic() + 10
    while len(lines := record.read_text().splitlines()) < REQUESTS and time.monotonic() < deadline:
        time.sleep(0.05)
    procs.stop(proxy)
    procs.stop(serve)
    return [json.loads(line) for line in lines]


async def drive(url: str) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with gate:
            headers = {"authorization": "Bearer k", "x-llmsim-seed": str(i)}
            async with client.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
                assert r.status_code == 200
                async for _ in r.aiter_bytes():
                    pass

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(REQUESTS))), timeout=60)


def dkw(n: int) -> float:
    return math.sqrt(math.log(2 / ALPHA) / (2 * n))


def merged(itl: np.ndarray) -> float:
    """The share of gaps measured as ~0 ms: tokens that reached the proxy in one read."""
    return float(np.mean(itl < 1.0))


def assert_same_distribution(
    got: np.ndarray, want: np.ndarray, *, slack: float, what: str, widen: float = 0.0
) -> None:
    """`got`'s CDF at `want`'s percentiles is within the two-sample DKW band (after `slack`),
    widened by `widen`."""
    eps = dkw(got.size) + dkw(want.size) + widen
    for q in QS:
        x = float(np.quantile(want, q))
        low, high = float(np.mean(got <= x + slack)), float(np.mean(got <= x - slack))
        assert low >= q - eps and high <= q + eps, (
            f"{what}: at p{q * 100:g} = {x:.2f}, F = {low:.3f}..{high:.3f}, eps {eps:.3f}"
        )


def test_recording_fitting_and_serving_the_fit_give_the_same_distributions(
    processes: Processes, tmp_path: Path
) -> None:
    known = tmp_path / "known.yaml"
    known.write_text(yaml.safe_dump(KNOWN))
    original = record_through_proxy(processes, tmp_path, known, "original")
    assert len(original) == REQUESTS

    # the recording is truthful: one event per token, gaps from the served ITL distribution
    lengths = np.array([r["outputChunks"] for r in original], dtype=float)
    assert lengths.min() >= 4 and lengths.max() <= 12
    itl = np.concatenate([r["itlMs"] for r in original])
    assert itl.size == int(lengths.sum()) - REQUESTS
    rng = np.random.default_rng(0)
    # the known ITL, drawn large enough that its own sampling error is negligible
    reference = 25 * np.exp(0.3 * rng.standard_normal(200_000))
    # Counting the role, finish, usage and [DONE] chunks would add 4 gaps of ~0 ms to every ~7:
    # over a third of the sample. What remains near 0 are tokens that reached the proxy in one read
    # (the served lognormal puts nothing below 1 ms).
    assert merged(itl) < 0.1
    assert_same_distribution(itl, reference, slack=TIMING_SLACK_MS, what="recorded ITL vs served",
                             widen=2 * merged(itl))  # fmt: skip

    fitted = tmp_path / "fitted.yaml"
    done = subprocess.run([sys.executable, "-m", "llmsim.cli.main", "profile", "fit", str(tmp_path / "original.jsonl"),
                           "--name", "fitted", "-o", str(fitted)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    replayed = record_through_proxy(processes, tmp_path, fitted, "replayed")
    assert len(replayed) == REQUESTS

    def field(records: list[dict[str, Any]], name: str) -> np.ndarray:
        return np.array([r[name] for r in records], dtype=float)

    assert_same_distribution(
        field(replayed, "ttftMs"), field(original, "ttftMs"), slack=TIMING_SLACK_MS, what="TTFT"
    )
    replayed_itl = np.concatenate([r["itlMs"] for r in replayed])
    assert_same_distribution(replayed_itl, itl, slack=TIMING_SLACK_MS, what="ITL",
                             widen=2 * (merged(itl) + merged(replayed_itl)))  # fmt: skip
    # output lengths are counts: a slack of 1 token covers the fit's interpolation between integers
    assert_same_distribution(field(replayed, "outputChunks"), lengths, slack=1.0, what="output tokens")
