"""Fixtures of the example tests."""

from __future__ import annotations

import sys
from pathlib import Path

# The manifest validation helpers (kubernetes-validate, CRD schemas) live with the chart tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))
