"""Terminal output with rich: a live progress line during the run and the summary table after."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmsim.loadgen.scheduler import LiveStats


async def show_progress(live: LiveStats, console: Console, done: asyncio.Event) -> None:
    """Redraw a progress bar (elapsed / duration) with request counters until `done` is set."""
    columns = (
        TextColumn("[bold]load[/]"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console, transient=True, refresh_per_second=8) as progress:
        task = progress.add_task("load", total=max(live.duration_s, 1e-9), counts="")
        while not done.is_set():
            progress.update(task, completed=min(live.elapsed_s, live.duration_s), counts=_counts(live))
            try:
                await asyncio.wait_for(done.wait(), 0.125)
            except TimeoutError:
                pass
        progress.update(task, completed=live.duration_s, counts=_counts(live))


def _counts(live: LiveStats) -> str:
    planned = f"/{live.scheduled}" if live.scheduled else ""  # a closed loop without iterations has no plan
    return (
        f"sent {live.started}{planned}  ok {live.succeeded}  "
        f"[red]err {live.failed}[/]  in flight {live.in_flight}  tokens {live.output_tokens}"
    )


def console_format(value: Any) -> str:
    """A number for the terminal: one decimal from 1 up, three significant digits below 1 (so an
    error rate of 0.0258 reads 0.0258, not 0.0), `-` for no data."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and abs(value) < 1:
            return f"{value:.3g}"
        return f"{value:,.1f}"
    return str(value)


def summary_table(report: dict[str, Any]) -> Table:
    """Latency percentiles (from actual and from intended send) and the headline numbers."""
    summary = report["summary"]
    table = Table(
        title="llmsim load: latency (ms)",
        title_justify="left",
        caption="† from the intended send time (includes schedule lag)",
        caption_justify="left",
    )
    table.add_column("metric", no_wrap=True)
    for col in ("p50", "p90", "p95", "p99", "max", "count"):
        table.add_column(col, justify="right")
    for section, suffix in (("latency", ""), ("latency_from_intended_send", " †")):
        for name, stats in report[section].items():
            if suffix and name in ("itl_ms", "tpot_ms"):
                continue  # identical: gaps do not depend on the send time
            table.add_row(
                name + suffix,
                *(console_format(stats[c]) for c in ("p50", "p90", "p95", "p99", "max", "count")),
            )
    lag = summary["schedule_lag_ms"]
    table.add_row(
        "schedule lag", *(console_format(lag[c]) for c in ("p50", "p90", "p95", "p99", "max", "count"))
    )
    return table


def print_summary(report: dict[str, Any], console: Console) -> None:
    s = report["summary"]
    console.print(summary_table(report))
    cost = "n/a (unknown model price)" if s["cost_usd"] is None else f"${s['cost_usd']:.4f}"
    target = "" if s["target_rps"] is None else f"target {s['target_rps']:.2f} rps  "
    availability = "-" if s["availability"] is None else f"{s['availability']:.2%}"
    console.print(
        f"requests {s['requests']}  ok {s['succeeded']}  failed {s['failed']}  "
        f"error rate {s['error_rate']:.2%}  availability {availability}  {target}"
        f"achieved {s['achieved_rps']:.2f} rps  concurrency {s['concurrency']['mean']:.3g}  "
        f"output {s['output_tokens_per_s']:.1f} tok/s  cost {cost}",
        soft_wrap=True,
    )
    for model, m in report["by_model"].items():
        console.print(
            f"  model {model}: {m['requests']} requests, error rate {m['error_rate']:.2%}, "
            f"TTFT p95 {console_format(m['latency']['ttft_ms']['p95'])} ms",
            markup=False,
            soft_wrap=True,
        )
    for wid, wf in report["workflows"].items():
        rate = "-" if wf["success_rate"] is None else f"{wf['success_rate']:.1%}"
        turns = "  ".join(
            f"t{t['turn']} {console_format(t['e2e_ms']['p50'])}/{console_format(t['e2e_ms']['p95'])}"
            for t in wf["turns"]
        )
        console.print(
            f"workflow {wid}: {wf['succeeded']} of {wf['succeeded'] + wf['failed']} succeeded ({rate}), "
            f"{wf['abandoned']} abandoned; E2E p50/p95 {console_format(wf['e2e_ms']['p50'])}/"
            f"{console_format(wf['e2e_ms']['p95'])} ms; per turn p50/p95 ms: {turns}",
            markup=False,
            soft_wrap=True,
        )
    if s["errors_by_type"]:
        console.print(
            "errors: " + ", ".join(f"{k} {v}" for k, v in s["errors_by_type"].items()), soft_wrap=True
        )
        for kind, messages in report["errors"]["examples"].items():
            for msg in messages[:1]:
                console.print(f"  {kind}: {msg}", markup=False, highlight=False, soft_wrap=True)
    for note in report["run"]["notes"]:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    slo = report["slo"]
    for obj in slo["objectives"]:
        mark = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "[yellow]NO DATA[/]"}[obj["passed"]]
        windows = f"  windows failed: {len(obj['windows_failed'])}/{obj['windows_evaluated']}"
        console.print(
            f"SLO {mark} {obj['name']}  measured {console_format(obj['value'])}{windows}", soft_wrap=True
        )
