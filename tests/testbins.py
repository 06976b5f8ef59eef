"""The test-infrastructure binaries built by tests/cluster/build.sh (prometheus, promtool, ...):
where they are, or a skip that says how to build them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parent / "cluster" / "build.sh"


def locate(component: str) -> Path | None:
    """The directory of a component's binaries when build.sh has built them completely."""
    try:
        out = subprocess.run(
            [str(BUILD), "--locate", component], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return Path(lines[-1]) if out.returncode == 0 and lines else None


def require(component: str) -> Path:
    """`locate`, or skip the test saying how to build the component."""
    found = locate(component)
    if found is None:
        pytest.skip(
            f"the {component} test binaries are not built: run `tests/cluster/build.sh {component}` (needs Go)"
        )
    return found
