"""`llmsim serve --workers 2` as real processes: one simulator to its users, whichever worker answers.

Every request below opens a new connection (httpx without keep-alive), so the kernel spreads them
over both workers (SO_REUSEPORT hashes each connection's ports); the tests check that both took
part through the workers' own sockets, then that what users see is the sum, or the single
process's answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

pytestmark = pytest.mark.slow

PROFILES = {
    "fast": {"seed": 3, "latency": {"ttftMs": {"type": "constant", "value": 1}, "itlMs": {"type": "constant", "value": 0},
             "outputTokens": {"type": "constant", "value": 4}}},
    "limited": {"seed": 3, "latency": {"ttftMs": {"type": "constant", "value": 1}, "outputTokens": {"type": "constant", "value": 2}},
                "faults": {"rateLimits": {"requestsPerMinute": 6}}},
    "faulty": {"seed": 5, "latency": {"ttftMs": {"type": "constant", "value": 1}, "outputTokens": {"type": "constant", "value": 2}},
               "faults": {"rates": {"server_error": 0.3, "rate_limit": 0.2}, "failFirst": {"attempts": 2, "fault": "overloaded"}}},
}  # fmt: skip
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc, self.url = proc, url

    def children(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
        )
        return [int(p) for p in out.stdout.split()]

    def run_dir(self) -> Path:
        env = Path(f"/proc/{self.children()[0]}/environ").read_bytes().split(b"\0")
        return Path(next(e for e in env if e.startswith(b"LLMSIM_WORKER_DIR=")).split(b"=", 1)[1].decode())


def start(tmp_path: Path, workers: int, *, own_group: bool = False) -> Served:
    args = []
    for name, spec in PROFILES.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(spec))
        args += ["--profile", str(path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmsim.cli.main", "serve", *args, "--port", "0", "--workers", str(workers),
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=own_group,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    seen = b""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        found = re.search(rb"Running on (http://\S+)", line)
        if found:
            return Served(proc, found.group(1).decode())
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"llmsim serve --workers did not start: {seen.decode()[-2000:]}")


def stop(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait()
    if served.proc.stderr:
        served.proc.stderr.close()


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("two"), 2)
    yield served
    stop(served)


def post(
    url: str, profile: str, headers: dict[str, str] | None = None, body: dict[str, Any] = CHAT
) -> httpx.Response:
    with httpx.Client(timeout=10, headers={"Connection": "close"}) as client:  # a new connection each time
        return client.post(
            url + "/v1/chat/completions", json=body, headers={"x-llmsim-profile": profile, **(headers or {})}
        )


def parts_per_worker(served: Served, session_id: str) -> list[int]:
    """How many of the session's requests each worker served (asked on the workers' own sockets)."""

    async def ask() -> list[int]:
        counts = []
        for index in range(2):
            connector = aiohttp.UnixConnector(path=str(served.run_dir() / f"worker-{index}.sock"))
            async with (
                aiohttp.ClientSession(connector=connector) as client,
                client.get(f"http://worker/sessions/{session_id}") as response,
            ):
                counts.append((await response.json())["requests"] if response.status == 200 else 0)
        return counts

    return asyncio.run(ask())


def test_metrics_and_sessions_add_up_over_both_workers(two: Served) -> None:
    created = httpx.post(two.url + "/v1/sessions", json={"id": "spread", "labels": {"run": "w2"}})
    assert created.status_code == 201
    for _ in range(40):
        assert post(two.url, "fast", {"x-llmsim-session": "spread"}).status_code == 200
    per_worker = parts_per_worker(two, "spread")
    assert sum(per_worker) == 40 and min(per_worker) > 0, per_worker  # both served some
    metrics = httpx.get(two.url + "/v1/metrics/spread").json()
    assert metrics["requests"] == 40 and metrics["ok"] == 40 and metrics["labels"] == {"run": "w2"}
    assert metrics["outputTokens"] == 160 and metrics["ttftS"]["count"] == 40
    exposition = httpx.get(two.url + "/metrics").text
    total = sum(float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines()
                if line.startswith("llmsim_requests_total{") and 'outcome="ok"' in line)  # fmt: skip
    assert total >= 40  # every worker's requests (other tests of this module may add some)
    done = httpx.delete(two.url + "/v1/sessions/spread").json()
    assert done["state"] == "completed" and done["requests"] == 40
    assert httpx.get(two.url + "/v1/metrics/nobody").status_code == 404


def test_a_rate_limit_is_one_bucket_for_both_workers(two: Served) -> None:
    t0 = time.monotonic()
    statuses = [post(two.url, "limited", {"authorization": "Bearer k-1"}).status_code for _ in range(20)]
    refilled = int((time.monotonic() - t0) * 6 / 60)  # the bucket refills 6 per minute
    assert set(statuses) == {200, 429}
    assert 6 <= statuses.count(200) <= 6 + refilled  # one bucket of 6; per-worker buckets would admit 12


def test_seeded_faults_are_those_of_a_single_worker(two: Served, tmp_path: Path) -> None:
    def outcomes(served: Served) -> list[tuple[int, str]]:
        out = []
        for i in range(24):  # three conversations, eight attempts each: fail-first, then per-attempt rates
            body = {**CHAT, "messages": [{"role": "user", "content": f"conversation {i % 3}"}]}
            response = post(served.url, "faulty", body=body)
            error = response.json().get("error", {}) if response.status_code != 200 else {}
            out.append((response.status_code, str(error.get("type"))))
        return out

    one = start(tmp_path, 1)
    try:
        single = outcomes(one)
    finally:
        stop(one)
    assert outcomes(two) == single
    assert {status for status, _ in single} >= {200, 429, 500, 503}  # every kind of decision was met


def test_sigterm_stops_every_worker_and_removes_the_run_directory(tmp_path: Path) -> None:
    served = start(tmp_path, 2)
    workers, run_dir = served.children(), served.run_dir()
    assert len(workers) == 2 and run_dir.is_dir()
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert not run_dir.exists()
    stop(served)


def test_ctrl_c_to_the_process_group_is_a_clean_stop(tmp_path: Path) -> None:
    served = start(tmp_path, 2, own_group=True)
    workers = served.children()
    os.killpg(served.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: every process gets it
    assert served.proc.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    stop(served)


def test_no_worker_outlives_a_killed_supervisor(tmp_path: Path) -> None:
    served = start(tmp_path, 2)
    workers = served.children()
    served.proc.kill()
    served.proc.wait()
    deadline = time.monotonic() + 20
    while any(b"zombie" not in _state(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)  # they are not our children: wait for them to go
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists() and b"zombie" not in _state(pid)]
    assert not alive
    stop(served)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b"zombie"


def test_workers_auto_and_bad_values() -> None:
    from llmsim.errors import LLMSimError
    from llmsim.server import workers

    assert workers.worker_count("auto") == len(os.sched_getaffinity(0))
    assert workers.worker_count("3") == 3
    for bad in ("0", "-2", "many"):
        with pytest.raises(LLMSimError, match="--workers"):
            workers.worker_count(bad)
