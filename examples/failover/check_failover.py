"""Check that the failover drill moved traffic: read the gateway's /stats and judge it.

    kubectl -n llmsim-failover port-forward svc/llm-gateway 8000:80 &
    python examples/failover/check_failover.py http://127.0.0.1:8000

Passes (exit 0) when the primary failed some requests (the outage happened), the secondary
answered requests (traffic moved), and the primary answered requests too (it was used before
the outage or after recovery). Prints the counts either way.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any


def verdict(stats: dict[str, Any]) -> list[str]:
    """Problems with the observed traffic split (empty: failover worked)."""
    primary, secondary = stats.get("primary", {}), stats.get("secondary", {})
    problems = []
    if primary.get("failed", 0) == 0:
        problems.append("the primary never failed: the outage window was not crossed (run longer?)")
    if secondary.get("answered", 0) == 0:
        problems.append("the secondary answered nothing: traffic did not move")
    if primary.get("answered", 0) == 0:
        problems.append("the primary answered nothing: it was never healthy during the run")
    return problems


def main(argv: list[str]) -> int:
    base = argv[1] if len(argv) > 1 else "http://127.0.0.1:8000"
    with urllib.request.urlopen(f"{base.rstrip('/')}/stats", timeout=10) as response:
        stats = json.load(response)
    print(json.dumps(stats, indent=2))
    problems = verdict(stats)
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if not problems:
        print("OK: traffic moved to the secondary during the outage and the primary served outside it")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
