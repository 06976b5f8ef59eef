"""A load job end to end: run one worker, then write its partial result or the full report
(report.json + report.html). This is what `llmsim load` calls; other code (`make run`, the
operator's worker image) may call `run_scenario` directly."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from llmsim.api.scenario import LoadScenarioSpec, ModelPrice
from llmsim.loadgen import console as live_console
from llmsim.loadgen import report, runner
from llmsim.loadgen.results import Partial
from llmsim.loadgen.scenario_file import read_api_key
from llmsim.loadgen.scheduler import LiveStats

if TYPE_CHECKING:
    from llmsim.loadgen.metrics import LoadMetrics


@dataclass(frozen=True)
class JobResult:
    report: dict[str, Any] | None
    """The report (None for a worker of a parallel run, which writes a partial)."""
    partial: Partial
    paths: list[Path]
    """Files written."""


def write_report(
    spec: LoadScenarioSpec,
    partial: Partial,
    out_dir: Path,
    *,
    price_overrides: list[ModelPrice] | None = None,
    with_html: bool = True,
) -> tuple[dict[str, Any], list[Path]]:
    """Build report.json (and report.html) in `out_dir`."""
    doc = report.build(spec, partial, price_overrides=price_overrides or [])
    paths = [out_dir / "report.json"]
    report.write_json(paths[0], doc)
    if with_html:
        from llmsim.loadgen import html  # matplotlib: only when a page is drawn

        paths.append(out_dir / "report.html")
        paths[1].write_text(html.render(doc), encoding="utf-8")
    return doc, paths


async def run_scenario(
    spec: LoadScenarioSpec,
    out_dir: Path,
    *,
    worker_index: int | None = None,
    base_dir: Path | None = None,
    price_overrides: list[ModelPrice] | None = None,
    with_html: bool = True,
    console: Console | None = None,
    progress: bool = False,
    metrics: LoadMetrics | None = None,
) -> JobResult:
    """Run `spec` (or one worker's share of it) and write the results into `out_dir`.

    SIGINT/SIGTERM stop the run early; what was measured is still written, with a note.
    `metrics` (the `--metrics` exporter) sees every finished request and the run's progress.
    """
    api_key = read_api_key(spec.target.api_key, base_dir)
    stop = asyncio.Event()
    live = LiveStats()
    if metrics is not None:
        metrics.attach(live)
    loop = asyncio.get_running_loop()
    interrupted: list[str] = []

    def on_signal(name: str) -> None:
        interrupted.append(name)
        stop.set()

    installed: list[tuple[signal.Signals, Any]] = []
    if sys.platform != "win32":
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, on_signal, sig.name)
                installed.append((sig, previous))
            except (RuntimeError, ValueError):  # not the main thread
                pass
    done = asyncio.Event()
    display = None
    if progress and console is not None:
        display = asyncio.create_task(live_console.show_progress(live, console, done))
    try:
        partial = await runner.run_worker(
            spec,
            api_key=api_key,
            worker_index=worker_index or 0,
            base_dir=base_dir,
            live=live,
            stop=stop,
            on_record=metrics.observe if metrics is not None else None,
        )
    finally:
        done.set()
        if display is not None:
            await display
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            if previous is not None:  # give back whatever the caller had
                signal.signal(sig, previous)
    if interrupted:
        partial.notes.insert(0, f"interrupted by {interrupted[0]}")
    if spec.parallelism > 1:
        path = out_dir / f"partial-{worker_index or 0}.json"
        report.write_json(path, report.partial_document(spec, partial))
        return JobResult(None, partial, [path])
    doc, paths = write_report(spec, partial, out_dir, price_overrides=price_overrides, with_html=with_html)
    return JobResult(doc, partial, paths)
