"""Other simulators, installed outside the project for `make bench` to compare against.

    python -m bench.peers install     # fakellm (PyPI) into its own venv; llm-d-inference-sim if it builds

Both go under `$LLMSIM_BENCH_PEERS` (default `~/.cache/llmsim/bench-peers/`): never into the
project or its venv, and nothing of theirs is committed. `llm-d-inference-sim` is built from the
Go module proxy with `CGO_ENABLED=0`; when that fails (it links ZeroMQ through cgo), the bench
says so and leaves it out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get("LLMSIM_BENCH_PEERS", Path.home() / ".cache/llmsim/bench-peers"))
FAKELLM = ROOT / "fakellm" / "bin" / "fakellm"
LLMD = ROOT / "go" / "bin" / "llm-d-inference-sim"
LLMD_MODULE = "github.com/llm-d/llm-d-inference-sim"
LLMD_PACKAGE = LLMD_MODULE + "/cmd/llm-d-inference-sim"

FAKELLM_CONFIG = """version: 1
defaults:
  fallback: deterministic_echo
rules:
  - name: bench
    when:
      messages_contain: "benchmark"
    respond:
      content: "{content}"
"""


def fakellm_config(directory: Path, tokens: int) -> Path:
    """A fakellm rules file answering the bench's prompt with `tokens` words (its streams send one
    chunk per word, 10 ms apart: fakellm has no latency settings)."""
    path = directory / "fakellm.yaml"
    path.write_text(FAKELLM_CONFIG.format(content=" ".join(["tok"] * tokens)))
    return path


def install() -> int:
    ROOT.mkdir(parents=True, exist_ok=True)
    if not FAKELLM.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ROOT / "fakellm")], check=True)
        subprocess.run([str(ROOT / "fakellm/bin/pip"), "install", "--quiet", "fakellm"], check=True)
    print(f"fakellm: {FAKELLM}")
    go = shutil.which("go")
    if go is None:
        print("llm-d-inference-sim: no Go toolchain; left out")
        return 0
    if not LLMD.exists():
        # A scratch module that requires the simulator's module by its root path (the package path
        # itself is not a module, which `go install pkg@version` would have to look up first).
        work = ROOT / "llmd-build"
        work.mkdir(exist_ok=True)
        env = {**os.environ, "CGO_ENABLED": "0", "GOPATH": str(ROOT / "gopath"), "GOFLAGS": "-modcacherw"}
        steps = [[go, "mod", "init", "llmsim-bench-peer"], [go, "get", LLMD_MODULE + "@latest"],
                 [go, "build", "-o", str(LLMD), LLMD_PACKAGE]]  # fmt: skip
        if (work / "go.mod").exists():
            steps = steps[1:]
        for step in steps:
            build = subprocess.run(step, cwd=work, env=env, capture_output=True, text=True)
            if build.returncode != 0:
                print(
                    f"llm-d-inference-sim: `{' '.join(step[1:3])}` failed; left out:\n{build.stderr[-1500:]}"
                )
                return 0
    print(f"llm-d-inference-sim: {LLMD}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit(__doc__)
    sys.exit(install())
