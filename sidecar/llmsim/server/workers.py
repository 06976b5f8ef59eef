"""`llmsim serve --workers N`: N worker processes on one port, one event loop each.

The supervisor (the process the user started) serves nothing itself. It makes a private run
directory (mode 0700, removed on exit) holding the workers' Unix sockets (`server/peers.py`) and
prometheus-client's multiprocess files, picks the port (a `--port 0` is resolved once, so every
worker binds the same one), draws one process seed for all of them, and starts each worker as
`python -m llmsim.cli.main serve ...` with the same options. Each binds the port with
SO_REUSEPORT, so the kernel spreads connections over them. Once all are listening it prints
`Running on http://HOST:PORT (N workers)`.

SIGTERM or SIGINT to the supervisor stops every worker gracefully (each finishes as `llmsim
serve` does alone); workers that have not exited after `STOP_GRACE_S` are killed. A worker that
dies on its own stops the others too (exit code 1): a simulator with a missing worker would
answer differently from the one configured. Workers die with their supervisor (PR_SET_PDEATHSIG),
so none is left behind even when the supervisor is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from llmsim.errors import LLMSimError
from llmsim.server import peers

STOP_GRACE_S = 30.0
"""How long stopped workers get to finish their requests before they are killed."""
START_TIMEOUT_S = 60.0
"""How long the workers get to start listening."""
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def worker_count(value: str) -> int:
    """`--workers`: a positive number, or `auto` (the number of CPUs this process may use)."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise LLMSimError(f"--workers: expected a number or 'auto', got {value!r}") from None
    if count < 1:
        raise LLMSimError(f"--workers: must be at least 1, got {count}")
    return count


def _die_with_parent() -> None:
    """preexec_fn: the worker gets SIGTERM when the supervisor dies (Linux), so none is orphaned."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


@contextlib.contextmanager
def _reserved_port(host: str, port: int) -> Iterator[int]:
    """`port`, or for 0 a free one held (bound, not listening, SO_REUSEPORT) until workers listen."""
    if port != 0:
        yield port
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


class _Stop:
    """Set by SIGTERM/SIGINT."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum


def supervise(worker_args: Sequence[str], count: int, host: str, port: int, process_seed: int) -> int:
    """Run `count` workers of `llmsim serve WORKER_ARGS` on host:port until a signal; exit code."""
    run_dir = Path(tempfile.mkdtemp(prefix="llmsim-serve-"))
    os.chmod(run_dir, 0o700)
    metrics_dir = run_dir / "metrics"
    metrics_dir.mkdir()
    stop = _Stop()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with _reserved_port(host, port) as chosen:
            env = {**os.environ, METRICS_DIR_ENV: str(metrics_dir), peers.WORKER_DIR_ENV: str(run_dir),
                   peers.WORKER_COUNT_ENV: str(count), peers.PROCESS_SEED_ENV: str(process_seed)}  # fmt: skip
            argv = [sys.executable, "-m", "llmsim.cli.main", "serve", *worker_args, "--port", str(chosen)]
            for index in range(count):
                procs.append(subprocess.Popen(argv, env={**env, peers.WORKER_INDEX_ENV: str(index)},
                                              preexec_fn=_die_with_parent))  # fmt: skip
            ctx = peers.WorkerContext(0, count, run_dir)
            deadline = time.monotonic() + START_TIMEOUT_S
            while not all(ctx.ready_path(i).exists() for i in range(count)):
                if stop.signal is not None:
                    return _stop_all(procs, 0)
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    print(
                        "llmsim: a worker failed to start; stopping the others", file=sys.stderr, flush=True
                    )
                    return _stop_all(procs, 1)
                time.sleep(0.05)
        print(f"Running on http://{host}:{chosen} ({count} workers)", file=sys.stderr, flush=True)
        while stop.signal is None:
            dead = next((p for p in procs if p.poll() is not None), None)
            if dead is not None:
                time.sleep(0.2)  # a Ctrl-C reaches the workers too: their exit may precede our handler
                if stop.signal is not None:
                    break
                print(f"llmsim: worker {procs.index(dead)} exited ({dead.returncode}); stopping the others",
                      file=sys.stderr, flush=True)  # fmt: skip
                return _stop_all(procs, 1)
            time.sleep(0.1)
        return _stop_all(procs, 0)
    finally:
        for p in procs:  # never leave one behind, whatever happened above
            if p.poll() is None:
                p.kill()
                p.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
        shutil.rmtree(run_dir, ignore_errors=True)


def _stop_all(procs: list[subprocess.Popen[bytes]], code: int) -> int:
    """SIGTERM every live worker, wait for them (killing stragglers after the grace), exit code."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return code
