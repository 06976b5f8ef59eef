"""Helpers shared by the benchmarks: free ports, pinned subprocesses, percentiles, tables."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: int) -> Any:
    """preexec_fn pinning a child process to one core (when the machine has more than one)."""
    cores = os.cpu_count() or 1

    def pin() -> None:
        if cores > 1 and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {core % cores})

    return pin


def http_ready(url: str) -> Callable[[], bool]:
    """Ready once `url` answers at all (any status)."""

    def check() -> bool:
        try:
            httpx.get(url, timeout=0.5)
        except httpx.TransportError:
            return False
        return True

    return check


def port_ready(port: int) -> Callable[[], bool]:
    """Ready once 127.0.0.1:`port` accepts a TCP connection."""

    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


@contextlib.contextmanager
def pinned_process(
    argv: Sequence[str], ready: Callable[[], bool], core: int = 0, timeout: float = 30, settle_s: float = 0.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` pinned to `core`, wait until `ready()` (then `settle_s` more), stop it afterwards."""
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(core)
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(map(str, argv))} did not start")
            time.sleep(0.1)
        time.sleep(settle_s)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_process(
    args: Sequence[str], ready_url: str, core: int = 0, timeout: float = 30
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A Python server (`python ARGS`) pinned to `core`, ready once `ready_url` answers."""
    return pinned_process([sys.executable, *args], http_ready(ready_url), core, timeout)


def pct(values: Sequence[float] | np.ndarray, q: float) -> float:
    arr = np.asarray(values, dtype=float)
    return float(np.percentile(arr, q)) if arr.size else float("nan")


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """A plain, copy-pasteable table (also what docs/benchmarks.md quotes)."""
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    print(f"\n## {title}\n")
    print("| " + " | ".join(c.ljust(widths[c]) for c in cols) + " |")
    print("|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|")
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(c)).ljust(widths[c]) for c in cols) + " |")
    sys.stdout.flush()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return "" if v is None else str(v)
