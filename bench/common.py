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


def pinned(core: int | None) -> Any:
    """preexec_fn pinning a child process to one core (when the machine has more than one; None: unpinned)."""
    cores = os.cpu_count() or 1

    def pin() -> None:
        if core is not None and cores > 1 and hasattr(os, "sched_setaffinity"):
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
    argv: Sequence[str],
    ready: Callable[[], bool],
    core: int | None = 0,
    timeout: float = 30,
    settle_s: float = 0.0,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` pinned to `core`, wait until `ready()` (then `settle_s` more), stop it afterwards.
    `env`: variables added to this process's environment for the child."""
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned(core),
        env={**os.environ, **env} if env else None,
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
    args: Sequence[str],
    ready_url: str,
    core: int | None = 0,
    timeout: float = 30,
    env: dict[str, str] | None = None,
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A Python server (`python ARGS`) pinned to `core`, ready once `ready_url` answers."""
    return pinned_process([sys.executable, *args], http_ready(ready_url), core, timeout, env=env)


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


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by `pid` and its live descendants (a multi-worker server's total)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                parents[int(entry)], cpu[int(entry)] = stat
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        total += cpu.get(current, 0.0)
        frontier.extend(child for child, parent in parents.items() if parent == current)
    return total


def load_average() -> str:
    """The 1-minute load average, printed beside every figure taken on a shared machine."""
    return f"{os.getloadavg()[0]:.2f}"
