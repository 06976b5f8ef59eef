"""The e2e suite needs Docker and kind. Where they are missing its tests are skipped with the reason,
and the reason is printed at the end of every pytest run that did not run them (`make test`
deselects the `e2e` marker)."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

import kind_env

# The manifest validation helpers (kubernetes-validate, CRD schemas) live with the chart tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))
import pytest


@cache
def _missing() -> tuple[str, ...]:
    return tuple(kind_env.missing_requirements())


_E2E_IDS: set[str] = set()


@pytest.hookimpl(tryfirst=True)  # before `-m 'not e2e'` deselects them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    _E2E_IDS.update(item.nodeid for item in e2e)
    if e2e and _missing():
        skip = pytest.mark.skip(reason="kind e2e suite: " + "; ".join(_missing()))
        for item in e2e:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    ran = [r for r in reports if r.nodeid in _E2E_IDS]
    if ran:
        return
    reason = "; ".join(_missing()) or "not selected (run `make e2e`)"
    terminalreporter.write_line(f"kind e2e suite skipped: {reason}", yellow=True)
