"""An idle `llmsim serve` exits within 2 s of SIGTERM even when its OTLP collector accepts
connections and never answers, and with its parse worker process started (issue 18, item 5)."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostile.harness import probe, serve

EXIT_S = 2.0


class BlackHole:
    """A TCP server that accepts every connection, reads what it is sent and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)  # held open, never read past the kernel buffer, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def test_an_idle_serve_exits_within_2_s_of_sigterm_with_a_black_hole_collector(
    tmp_path: Path, black_hole: BlackHole
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{black_hole.port}",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with serve(tmp_path, env=env) as served:
        body = json.dumps(
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        )
        for _ in range(3):  # spans, metrics and log records are queued for the collector
            assert probe(served, "POST", "/v1/chat/completions", body.encode()).status == 200
        big = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x " * (3 << 20)}]})
        assert (
            probe(served, "POST", "/v1/chat/completions", big.encode(), timeout_s=30).status == 400
        )  # the parse worker runs
        deadline = time.monotonic() + 5
        while black_hole.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert black_hole.accepted > 0, "the exporters never connected to the collector"
        time.sleep(0.3)  # idle again; an export is stuck on the collector
        started = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(timeout=30)
        finally:
            took = time.monotonic() - started
        assert took < EXIT_S, f"llmsim serve took {took:.1f} s to exit after SIGTERM:\n{served.log()[-2000:]}"
        assert served.proc.returncode == 0, served.log()[-2000:]
        assert "Traceback" not in served.log()
