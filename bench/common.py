"""Helpers shared by the benchmarks: free ports, pinned subprocesses, percentiles, tables."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
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


@contextlib.contextmanager
def server_process(
    args: Sequence[str], ready_url: str, core: int = 0, timeout: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server pinned to `core`, wait until `ready_url` answers (any status), stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(core)
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(ready_url, timeout=0.5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server {args} did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
