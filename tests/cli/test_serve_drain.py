"""`llmsim serve` lets go: a held `timeout` fault ends when its client leaves (the gauge and the
session's counters go back down, the request is recorded `cancelled`) and when the server shuts
down; SIGTERM drains in-flight streams for at most `--drain-timeout`, and exits at once when
nothing is in flight.

The exit-time bounds are generous multiples of what is measured here (about 0.3 s with a held
fault and with nothing in flight; the drain bound plus about 0.3 s with a stream that outlives
it); aiohttp's default, which these replace, was a 60 s wait."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

USER = [{"role": "user", "content": "hi"}]
SLOW_STREAM = {  # a stream of 40 tokens at 100 ms each: 4 s, longer than the 1 s drain bound
    "seed": 1,
    "latency": {"ttftMs": {"type": "constant", "value": 5}, "itlMs": {"type": "constant", "value": 100},
                "outputTokens": {"type": "constant", "value": 40}},
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc, self.url = proc, url

    def active_streams(self) -> float:
        text = httpx.get(self.url + "/metrics", timeout=20).text
        found = re.findall(r'^llmsim_active_streams\{[^}]*provider="openai"[^}]*\} ([0-9.e+-]+)$', text, re.M)
        return sum(float(v) for v in found)

    def stop(self) -> float:
        """SIGTERM; the seconds until the process has exited."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return time.monotonic() - t0


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(profile: dict[str, object] | None = None, *args: str) -> Served:
        port = free_port()
        cmd = [sys.executable, "-m", "llmsim.cli.main", "serve", "--port", str(port), *args]
        if profile is not None:
            path = tmp_path / f"profile-{port}.json"
            path.write_text(json.dumps(profile))
            cmd += ["--profile", str(path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=0.5).status_code == 200:
                    return Served(proc, url)
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "llmsim serve did not start"
            time.sleep(0.1)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_held_timeout_ends_when_the_client_leaves(serve: Callable[..., Served]) -> None:
    served = serve()
    session = httpx.post(served.url + "/v1/sessions", json={}, timeout=20).json()["sessionId"]
    headers = {"x-llmsim-fault": "timeout", "x-llmsim-session": session, "authorization": "Bearer k"}
    for stream in (False, True):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(served.url + "/v1/chat/completions", headers=headers, timeout=httpx.Timeout(5, read=0.5),
                       json={"model": "gpt-4o", "messages": USER, "stream": stream})  # fmt: skip
    # the client gave up (and closed its connection): the server lets go within a check interval
    assert wait_for(lambda: served.active_streams() == 0), served.active_streams()
    metrics = httpx.get(f"{served.url}/v1/metrics/{session}").json()
    assert metrics["activeRequests"] == 0 and metrics["cancelled"] == 2 and metrics["errors"] == 0


def test_sigterm_releases_held_faults_and_exits_promptly(serve: Callable[..., Served]) -> None:
    served = serve()
    ended: list[str] = []

    def held_request() -> None:
        try:
            httpx.post(served.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER}, timeout=30,
                       headers={"x-llmsim-fault": "timeout", "authorization": "Bearer k"})  # fmt: skip
        except httpx.HTTPError as exc:
            ended.append(type(exc).__name__)

    held = threading.Thread(target=held_request, daemon=True)
    held.start()
    assert wait_for(lambda: served.active_streams() == 1)
    exit_s = served.stop()
    assert served.proc.returncode == 0 and exit_s < 3.0, exit_s  # the 10 s default drain is not waited out
    held.join(timeout=5)
    assert ended == ["RemoteProtocolError"]  # cut, as a timeout fault ends: no answer at all


def test_sigterm_with_nothing_in_flight_exits_at_once(serve: Callable[..., Served]) -> None:
    served = serve()
    httpx.post(served.url + "/v1/chat/completions", headers={"authorization": "Bearer k"},
               json={"model": "gpt-4o", "messages": USER}, timeout=20)  # fmt: skip
    exit_s = served.stop()
    assert served.proc.returncode == 0 and exit_s < 3.0, exit_s


def test_sigterm_drains_a_stream_for_at_most_the_drain_timeout(serve: Callable[..., Served]) -> None:
    served = serve(SLOW_STREAM, "--drain-timeout", "1")
    got: list[bytes] = []

    def read() -> None:
        try:
            with httpx.stream("POST", served.url + "/v1/chat/completions", headers={"authorization": "Bearer k"},
                              json={"model": "gpt-4o", "messages": USER, "stream": True}, timeout=30) as r:  # fmt: skip
                for chunk in r.iter_bytes():
                    got.append(chunk)
        except httpx.HTTPError:
            pass  # closed at the drain bound

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert wait_for(lambda: len(got) >= 2)
    exit_s = served.stop()
    reader.join(timeout=5)
    body = b"".join(got)
    assert 0.9 <= exit_s < 3.5, exit_s  # drained for the 1 s bound, then closed
    assert b"[DONE]" not in body and body.count(b'"content":') >= 5  # ~10 tokens came during the drain


def test_drain_timeout_must_be_a_number_of_seconds() -> None:
    done = subprocess.run([sys.executable, "-m", "llmsim.cli.main", "serve", "--drain-timeout", "soon"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and "--drain-timeout: 'soon' is not a number of seconds" in done.stderr
