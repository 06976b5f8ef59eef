"""Child processes of the test infrastructure: started with their output in a log file, stopped by
PID (SIGTERM, then SIGKILL after a grace period), and never outliving the test process: each child
asks the kernel for SIGKILL when its parent dies (Linux `PR_SET_PDEATHSIG`), so even a pytest
killed with SIGKILL leaves no control plane behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
"""Resolved here, in the parent: the child between fork and exec must not load libraries."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the way envtest picks them)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


class ProcessFailed(RuntimeError):
    """A managed process exited, or did not become ready; the message ends with its log's tail."""


def wait_for[T](
    check: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.1,
    alive: Callable[[], None] | None = None,
) -> T:  # fmt: skip
    """Poll `check` until it returns something other than None/False (exceptions count as "not yet");
    `alive` raises when a process it depends on died. Raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while True:
        if alive is not None:
            alive()
        try:
            result = check()
        except Exception as exc:  # not ready yet
            last = exc
        else:
            if result is not None and result is not False:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last).__name__}: {last})" if last else ""
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s{detail}")
        time.sleep(interval_s)


class ManagedProcess:
    """One child process with its log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, which stops us in order
                preexec_fn=_die_with_parent,
            )
        return self

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise ProcessFailed (with the log's tail) when the process has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise ProcessFailed(
                f"{self.name} exited with status {self._proc.returncode}; {self.log_path}:\n{self.log_tail()}"
            )

    def wait_ready[T](self, check: Callable[[], T | None], timeout_s: float, what: str) -> T:
        try:
            return wait_for(check, timeout_s, f"{self.name}: {what}", alive=self.check_alive)
        except TimeoutError as exc:
            raise ProcessFailed(f"{exc}; {self.log_path}:\n{self.log_tail()}") from None

    def signal(self, signum: int) -> None:
        if self.running() and self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signum)

    def stop(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM, wait up to `grace_s`, then SIGKILL; returns the exit status (None if never started)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self._proc.wait(timeout=10)
        return self._proc.returncode
