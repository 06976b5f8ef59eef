"""Entry point of a LoadScenario Job worker: `python -m llmsim_operator.worker <llmsim load args>`.

Runs `llmsim load` with the given arguments, then prints the worker's result (the partial of a
parallel run, or report.json) as one marked log line that the operator collects and merges. The
exit code is `llmsim load`'s.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from llmsim.cli import main as cli
from llmsim_operator import results


def _out_dir(argv: Sequence[str]) -> Path:
    args = list(argv)
    return Path(args[args.index("--out") + 1]) if "--out" in args else Path("llmsim-report")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["load"]:
        args = ["load", *args]
    code = cli.main(args)
    out = _out_dir(args)
    files = sorted(out.glob("partial-*.json")) or sorted(out.glob("report.json"))
    for path in files[:1]:
        print(results.encode(json.loads(path.read_text(encoding="utf-8"))), flush=True)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
