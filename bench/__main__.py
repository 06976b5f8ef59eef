"""`make bench`: run the benchmarks and print their figures side by side with references.

python -m bench                 # everything
python -m bench serve           # only the simulator's timing accuracy and ceiling
python -m bench --quick         # fewer/lower concurrency levels (a smoke run)
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time

SECTIONS = {
    "cost": "bench.request_cost",
    "serve": "bench.serve_timing",
    "scaling": "bench.scaling",
    "loadgen": "bench.loadgen",
    "proxy": "bench.proxy",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"which benchmarks: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument(
        "--baseline", metavar="DIR", help="cost: also run the llmsim sources in DIR (before/after)"
    )
    parser.add_argument("--workers", type=int, default=1, help="cost: also run `llmsim serve --workers N`")
    parser.add_argument("--loops", nargs="+", default=["uvloop", "asyncio"], choices=["uvloop", "asyncio"])
    args = parser.parse_args()
    args.streams = [1, 100] if args.quick else [1, 100, 1000]
    print(f"# llmsim benchmarks — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )
    print(f"command: {' '.join(sys.argv)}")
    failed = 0
    for name in args.sections or list(SECTIONS):
        try:
            module = importlib.import_module(SECTIONS[name])
        except ModuleNotFoundError as exc:
            if exc.name == SECTIONS[name]:
                print(f"\n(section {name}: not available)")
                continue
            raise
        try:
            module.run(args)
        except Exception as exc:  # one broken section must not hide the others' figures
            failed += 1
            print(f"\nsection {name} failed: {exc!r}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
