"""The Job worker runs `llmsim load` through its command line and passes the Job's stop signal on."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from llmsim_operator import worker

pytestmark = pytest.mark.slow


def test_a_stopped_worker_stops_its_load_run_which_still_writes_what_it_measured(tmp_path: Path) -> None:
    args = ["load", "--target", "http://127.0.0.1:9", "--provider", "openai", "--model", "m", "--rps", "2",
            "--duration", "60", "--out", str(tmp_path), "--no-html", "--quiet"]  # fmt: skip
    before = signal.getsignal(signal.SIGTERM)
    stopper = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM))
    started = time.monotonic()
    stopper.start()
    try:
        code = worker.run_load(args)
    finally:
        stopper.cancel()
    assert time.monotonic() - started < 30, "the run stopped long before its 60 s"
    assert code == 3, "incomplete: interrupted"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["run"]["complete"] is False
    assert signal.getsignal(signal.SIGTERM) is before, "the worker gives the signal back"
