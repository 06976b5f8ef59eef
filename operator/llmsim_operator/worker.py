"""Entry point of a LoadScenario Job worker: `python -m llmsim_operator.worker <llmsim load args>`.

Runs `llmsim load` with the given arguments, then prints the worker's result (the partial of a
parallel run, or report.json) as one marked log line that the operator collects and merges. The
exit code is `llmsim load`'s.

`llmsim load` runs as a child process, through its command line: the operator depends on the
command's documented arguments, not on the CLI's Python internals (which sit above the operator
in the import layers, `.importlinter`). SIGTERM and SIGINT (the Job being stopped) are passed on,
so the load generator writes what it measured before it exits.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from llmsim_operator import results


def _out_dir(argv: Sequence[str]) -> Path:
    args = list(argv)
    return Path(args[args.index("--out") + 1]) if "--out" in args else Path("llmsim-report")


def run_load(args: Sequence[str]) -> int:
    """`llmsim load ARGS` in a child process; its exit code."""
    child = subprocess.Popen([sys.executable, "-m", "llmsim.cli.main", *args])

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["load"]:
        args = ["load", *args]
    code = run_load(args)
    out = _out_dir(args)
    files = sorted(out.glob("partial-*.json")) or sorted(out.glob("report.json"))
    for path in files[:1]:
        print(results.encode(json.loads(path.read_text(encoding="utf-8"))), flush=True)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
