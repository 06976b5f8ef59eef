"""Fixtures of the fault tests: a throwaway Redis (Debian's `redis-server`) on a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisProcess:
    """A redis-server without persistence, listening on 127.0.0.1:`port`."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        if REDIS_SERVER is None:
            pytest.skip(
                "redis-server is not installed (apt-get install redis-server); shared rate limits untested"
            )
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisProcess]:
    """One Redis per test module (tests use distinct keys)."""
    server = RedisProcess(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_factory() -> Iterator[type[RedisProcess]]:
    """Start and stop Redis processes inside a test (all are stopped at the end)."""
    started: list[RedisProcess] = []

    class Tracked(RedisProcess):
        def start(self) -> RedisProcess:
            started.append(self)
            return super().start()

    yield Tracked
    for server in started:
        server.stop()
