"""The plots of report.html (matplotlib figures from report.json, pure apart from drawing)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from llmsim.api.scenario import ClosedLoop, LoadScenarioSpec, WorkflowRun
from llmsim.loadgen import patterns
from llmsim.loadgen.histogram import LogHistogram

ERROR_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def latency_cdf_plot(report: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    drawn = False
    for section, style in (("latency", "-"), ("latency_from_intended_send", "--")):
        for name, doc in report["histograms"][section].items():
            if style == "--" and name in ("itl_ms", "tpot_ms"):
                continue
            hist = LogHistogram.from_dict(doc)
            if hist.count == 0:
                continue
            xs, ys = hist.cdf_points()
            label = name if style == "-" else f"{name} (from intended send)"
            ax.step([max(x, 1e-3) for x in xs], ys, where="post", linestyle=style, label=label)
            drawn = True
    if drawn:
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no successful requests", ha="center", transform=ax.transAxes)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_title("Latency CDFs")
    ax.grid(True, alpha=0.3)
    return fig


def rps_plot(report: dict[str, Any], spec: LoadScenarioSpec) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    wins = report["windows"]
    starts = [w["start_s"] for w in wins] + ([wins[-1]["end_s"]] if wins else [])
    if not isinstance(spec.pattern, ClosedLoop | WorkflowRun):
        t = np.linspace(0, spec.duration_s, 600, endpoint=False)
        ax.plot(
            t,
            patterns.rate(spec.pattern, t, spec.duration_s, spec.seed),
            color="#999",
            label="target rate (curve)",
        )
        ax.stairs([w["target_rps"] for w in wins], starts, label="target (window mean)", color="#1f77b4")
    ax.stairs(
        [w["achieved_rps"] for w in wins], starts, label="achieved (sent)", color="#ff7f0e", linewidth=2
    )
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("requests / s")
    ax.set_title("Request rate: target vs achieved")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def errors_plot(report: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    wins = report["windows"]
    for w in wins:
        if w.get("slo_failed"):
            ax.axvspan(w["start_s"], w["end_s"], color="#f4c7c3", alpha=0.6, lw=0)
    ax.bar(
        [w["start_s"] for w in wins],
        [100 * w["error_rate"] for w in wins],
        width=[w["end_s"] - w["start_s"] for w in wins],
        align="edge",
        color="#d62728",
    )
    ax.set_xlabel("time since start (s)  (shaded: a window that failed an SLO)")
    ax.set_ylabel("error rate (%)")
    ax.set_ylim(0, max(5.0, *(100 * w["error_rate"] * 1.1 for w in wins)) if wins else 5.0)
    ax.set_title("Error rate over time")
    ax.grid(True, alpha=0.3)
    return fig


def ttft_scatter(report: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    points = report["samples"]["prompt_tokens_vs_ttft_ms"]
    if points:
        xs, ys = zip(*points, strict=True)
        ax.scatter(xs, ys, s=6, alpha=0.5)
    else:
        ax.text(0.5, 0.5, "no streamed request succeeded", ha="center", transform=ax.transAxes)
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("TTFT (ms)")
    ax.set_title("TTFT vs prompt length")
    ax.grid(True, alpha=0.3)
    return fig


def _edges(wins: list[dict[str, Any]]) -> list[float]:
    return [w["start_s"] for w in wins] + ([wins[-1]["end_s"]] if wins else [])


def latency_over_time(report: dict[str, Any]) -> Figure:
    """TTFT and E2E p50/p95/p99 per window (log scale)."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    wins = report["windows"]
    mids = [(w["start_s"] + w["end_s"]) / 2 for w in wins]
    drawn = False
    for metric, style in (("ttft_ms", "-"), ("e2e_ms", "--")):
        for key, colour in (("p50", "#2ca02c"), ("p95", "#1f77b4"), ("p99", "#9467bd")):
            ys = [w["latency"][metric][key] for w in wins]
            if any(y is not None for y in ys):
                ax.plot(mids, [np.nan if y is None else y for y in ys], style, color=colour, marker=".",
                        label=f"{metric.removesuffix('_ms').upper()} {key}")  # fmt: skip
                drawn = True
    if drawn:
        ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=2)
    else:
        ax.text(0.5, 0.5, "no successful requests", ha="center", transform=ax.transAxes)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency percentiles per window (TTFT solid, E2E dashed)")
    ax.grid(True, alpha=0.3)
    return fig


def errors_by_type(report: dict[str, Any]) -> Figure:
    """Failed requests per window, stacked by error type."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    wins = report["windows"]
    kinds = sorted({k for w in wins for k in w["errors_by_type"]})
    bottom = np.zeros(len(wins))
    for i, kind in enumerate(kinds):
        counts = np.asarray([w["errors_by_type"].get(kind, 0) for w in wins], dtype=float)
        ax.bar([w["start_s"] for w in wins], counts, width=[w["end_s"] - w["start_s"] for w in wins],
               bottom=bottom, align="edge", color=ERROR_COLOURS[i % len(ERROR_COLOURS)], label=kind)  # fmt: skip
        bottom += counts
    if kinds:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no errors", ha="center", transform=ax.transAxes)
    if wins:
        ax.set_xlim(0, wins[-1]["end_s"])
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("failed requests")
    ax.set_title("Errors by type over time")
    ax.grid(True, alpha=0.3)
    return fig


def concurrency_plot(report: dict[str, Any], spec: LoadScenarioSpec) -> Figure:
    """Mean requests in flight per window, with the users (or workflows) started, or the cap."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    wins = report["windows"]
    edges = _edges(wins)
    ax.stairs(
        [w["concurrency"] for w in wins],
        edges,
        color="#17becf",
        linewidth=2,
        label="achieved (mean in flight)",
    )
    if isinstance(spec.pattern, ClosedLoop | WorkflowRun):
        noun = "users" if isinstance(spec.pattern, ClosedLoop) else "parallel workflows"
        ax.stairs([w["target_concurrency"] for w in wins], edges, color="#999", label=f"{noun} started")
    elif wins and max(w["concurrency"] for w in wins) >= 0.5 * spec.max_concurrency:
        ax.axhline(spec.max_concurrency, color="#b00020", linestyle=":", label="maxConcurrency")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("requests in flight")
    ax.set_title("Achieved concurrency over time")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig


def by_model_plot(report: dict[str, Any]) -> Figure:
    """TTFT and E2E p50/p95 per model of a model mix."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    models = list(report["by_model"])
    x = np.arange(len(models))
    bars = (("ttft_ms", "p50"), ("ttft_ms", "p95"), ("e2e_ms", "p50"), ("e2e_ms", "p95"))
    width = 0.8 / len(bars)
    for i, (metric, key) in enumerate(bars):
        ys = [report["by_model"][m]["latency"][metric][key] or 0.0 for m in models]
        ax.bar(x + i * width, ys, width, label=f"{metric.removesuffix('_ms').upper()} {key}")
    ax.set_xticks(x + 0.4 - width / 2, models, fontsize=8)
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency per model")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def workflow_turns_plot(report: dict[str, Any]) -> Figure:
    """Per-turn E2E p50/p95 of every workflow."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    for wid, wf in report["workflows"].items():
        turns = [t["turn"] for t in wf["turns"]]
        for key, style in (("p50", "-o"), ("p95", "--s")):
            ys = [t["e2e_ms"][key] for t in wf["turns"]]
            ax.plot(turns, [np.nan if y is None else y for y in ys], style, label=f"{wid} {key}")
    ax.set_xlabel("turn")
    ax.set_ylabel("turn latency (ms, tool rounds included)")
    ax.set_title("Workflow turns")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig
