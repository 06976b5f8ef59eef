"""What the kind end-to-end suite needs, and small helpers to drive the cluster.

python tests/e2e/kind_env.py --check     # exit 1 with the reasons when the suite cannot run
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLUSTER = os.environ.get("LLMSIM_E2E_CLUSTER", "llmsim-e2e")
"""Name of the kind cluster (created and deleted by the suite unless LLMSIM_E2E_KEEP_CLUSTER=1)."""
NODE_IMAGE = os.environ.get("LLMSIM_E2E_NODE_IMAGE", "")
"""kind node image (e.g. kindest/node:v1.29.14 for the oldest supported Kubernetes); empty: kind's default."""
TAG = "e2e"


def missing_requirements() -> list[str]:
    """Why the suite cannot run here (empty: it can)."""
    problems = []
    if shutil.which("docker") is None:
        problems.append("docker is not installed")
    else:
        probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
        if probe.returncode != 0:
            problems.append("no Docker engine is reachable (`docker info` failed)")
    for tool in ("kind", "kubectl"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed")
    return problems


def run(args: Sequence[str], *, timeout: float = 300, input: str | None = None, check: bool = True) -> str:
    """Run a command; on failure raise with its output (never a bare CalledProcessError)."""
    proc = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, input=input, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def kubectl(*args: str, input: str | None = None, timeout: float = 120, check: bool = True) -> str:
    return run(["kubectl", "--context", f"kind-{CLUSTER}", *args], input=input, timeout=timeout, check=check)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json"))


def wait_for[T](what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` and the last error."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # transient while things start
            last = exc
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f"; last error: {last}" if last else "")
    )


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        problems = missing_requirements()
        for problem in problems:
            print(f"make e2e: cannot run the kind suite: {problem}", file=sys.stderr)
        return 1 if problems else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
