"""`llmsim serve` as a real process honours the fixed-latency profile exactly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmsim.cli.main", "serve", "--profile", str(ROOT / "examples/profiles/fixed-latency.yaml"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"llmsim serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_fixed_latency_profile_is_honoured_exactly(served: str) -> None:
    client = openai.OpenAI(base_url=served + "/v1", api_key="x", max_retries=0)
    plain = client.chat.completions.create(model="any-model", messages=[{"role": "user", "content": "hi"}])
    assert plain.usage is not None and plain.usage.completion_tokens == 64
    for _ in range(2):  # the first streamed call pays the SDK's import/model-build cost
        t0 = time.perf_counter()
        times = []
        for chunk in client.chat.completions.create(
            model="any-model", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                times.append(time.perf_counter() - t0)
    assert len(times) == 64
    assert abs(times[0] - 0.250) < 0.040
    gaps = np.diff(times)
    assert abs(float(np.median(gaps)) - 0.020) < 0.003
    assert abs((times[-1] - times[0]) - 63 * 0.020) < 0.040


def test_bad_profile_file_fails_fast_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("latency: {ttftMs: {type: constant}}\n")
    proc = subprocess.run([sys.executable, "-m", "llmsim.cli.main", "serve", "--profile", str(bad), "--port", "0"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 2
    assert "latency.ttftMs.constant.value: Field required" in proc.stderr
    assert "Traceback" not in proc.stderr
