"""Terminal output: the live progress line and the summary table."""

from __future__ import annotations

import asyncio
import io

import numpy as np
from rich.console import Console

from llmsim.api.scenario import LoadScenarioSpec
from llmsim.loadgen import console, report
from llmsim.loadgen.results import Partial, RequestRecord
from llmsim.loadgen.scheduler import LiveStats
from llmsim.loadgen.wire import ErrorType


async def test_progress_shows_the_counters_while_running() -> None:
    out = io.StringIO()
    term = Console(file=out, force_terminal=True, width=160, color_system=None)
    live = LiveStats(scheduled=40, duration_s=2.0)
    done = asyncio.Event()
    task = asyncio.create_task(console.show_progress(live, term, done))
    for i in range(1, 5):
        live.started, live.succeeded, live.failed, live.elapsed_s = 10 * i, 9 * i, i, 0.5 * i
        for _ in range(100):  # each state is redrawn within a refresh (1/8 s); a busy machine may take longer
            if f"sent {10 * i}/40  ok {9 * i}  err {i}" in out.getvalue():
                break
            await asyncio.sleep(0.05)
    done.set()
    await asyncio.wait_for(task, 2)
    text = out.getvalue()
    assert "sent 30/40  ok 27  err 3" in text and "load" in text


def test_summary_shows_latencies_errors_notes_and_verdicts() -> None:
    spec = LoadScenarioSpec.model_validate(
        {"durationS": 2, "slos": [{"metric": "ttft_ms", "percentile": 95, "threshold": 100}]}
    )
    part = Partial(window_s=1.0, n_windows=2, workers=[0])
    rng = np.random.default_rng(0)
    for i in range(10):
        part.add(RequestRecord(index=i, intended_s=0.1 * i, sent_s=0.1 * i, stream=True, prompt_tokens=5,
                               output_tokens=3, ttft_s=0.2, itl_s=[0.01, 0.01], end_s=0.1 * i + 0.22), rng)  # fmt: skip
    part.add(RequestRecord(index=10, intended_s=1.5, sent_s=1.5, stream=True, prompt_tokens=5, end_s=1.6,
                           error=ErrorType.QUOTA, message="HTTP 429: You exceeded your current quota"), rng)  # fmt: skip
    part.notes.append("stopped early at 1.6 s of 2 s")
    out = io.StringIO()
    console.print_summary(report.build(spec, part), Console(file=out, width=140, color_system=None))
    text = out.getvalue()
    assert "ttft_ms" in text and "200.0" in text and "schedule lag" in text
    assert "quota 1" in text and "You exceeded your current quota" in text
    assert "note: stopped early" in text
    assert "SLO FAIL ttft_ms p95 < 100" in text


def test_small_values_keep_their_significant_digits() -> None:
    # An error rate of 0.0258 next to a FAIL once read "measured 0.0".
    assert console.console_format(0.0258) == "0.0258"
    assert console.console_format(0.000123456) == "0.000123"
    assert console.console_format(0.0) == "0.0"
    assert console.console_format(1234.56) == "1,234.6"
    assert console.console_format(None) == "-" and console.console_format(7) == "7"
    spec = LoadScenarioSpec.model_validate(
        {"durationS": 1, "slos": [{"metric": "error_rate", "threshold": 0.01}]}
    )
    part = Partial(window_s=1.0, n_windows=1, workers=[0])
    rng = np.random.default_rng(0)
    for i in range(40):
        failed = i == 0
        part.add(RequestRecord(index=i, intended_s=0.02 * i, sent_s=0.02 * i, stream=False, prompt_tokens=5,
                               output_tokens=0 if failed else 3, end_s=0.02 * i + 0.01,
                               error=ErrorType.SERVER_ERROR if failed else None), rng)  # fmt: skip
    out = io.StringIO()
    console.print_summary(report.build(spec, part), Console(file=out, width=140, color_system=None))
    assert "SLO FAIL error_rate < 0.01  measured 0.025 " in out.getvalue()
