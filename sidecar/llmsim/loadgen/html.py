"""report.html: one self-contained page (inline CSS, plots as base64 PNG) built from report.json."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from llmsim.api.scenario import ClosedLoop, LoadScenarioSpec, WorkflowRun
from llmsim.loadgen import patterns
from llmsim.loadgen.histogram import LogHistogram

PLOT_IDS = ("latency-cdf", "rps-over-time", "errors-over-time", "ttft-vs-prompt")
"""`id`s of the plot images (tests and users' scrapers look for them)."""

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;
text-align:right}th:first-child,td:first-child{text-align:left}.pass{color:#176b1d;font-weight:bold}.fail{color:#b00020;font-weight:bold}
.nodata{color:#8a6d00}.note{background:#fff6d6;padding:.4rem .8rem;border-left:4px solid #e0b000}
img{max-width:100%;height:auto}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}code{font-size:.9em}
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(plot_id: str, title: str, fig: Figure) -> str:
    src = f"data:image/png;base64,{_png(fig)}"
    return f'<figure><img id="{plot_id}" alt="{html.escape(title)}" src="{src}"></figure>'


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


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return html.escape(str(value))


def _verdict(passed: bool | None) -> str:
    return {True: '<span class="pass">PASS</span>', False: '<span class="fail">FAIL</span>'}.get(
        passed,  # type: ignore[arg-type]
        '<span class="nodata">NO DATA</span>',
    )


def render(report: dict[str, Any]) -> str:
    """The whole page."""
    spec = LoadScenarioSpec.model_validate(report["scenario"])
    s = report["summary"]
    esc = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>llmsim load report: {esc(spec.target.model)} @ {esc(spec.target.url)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>llmsim load report</h1><p>{esc(spec.target.provider.value)} "
        f"<code>{esc(spec.target.model)}</code> at "
        f"<code>{esc(spec.target.url)}</code>, pattern <b>{esc(spec.pattern.type)}</b>, "
        f"{spec.duration_s:g} s, started {esc(report['run']['started_at'])}, "
        f"workers {esc(str(report['run']['workers']))} of {report['run']['parallelism']}. "
        f"{esc(report['generator'])}, report schema {report['schema_version']}.</p>",
    ]
    for note in report["run"]["notes"]:
        parts.append(f'<p class="note">{esc(note)}</p>')
    slo = report["slo"]
    parts.append(f"<h2 id=slo>SLOs: {_verdict(slo['passed']) if slo['objectives'] else 'none defined'}</h2>")
    if slo["objectives"]:
        parts.append(
            "<table><tr><th>objective</th><th>measured</th><th>overall</th><th>windows failed</th></tr>"
        )
        for obj in slo["objectives"]:
            failed = ", ".join(f"{a:g}–{b:g} s" for a, b in obj["windows_failed_at_s"]) or "none"
            intended = " (from intended send)" if obj["from_intended_send"] else ""
            parts.append(
                f"<tr><td>{esc(obj['name'])}{intended}</td>"
                f"<td>{_cell(obj['value'])}</td><td>{_verdict(obj['passed'])}</td>"
                f"<td>{len(obj['windows_failed'])}/{obj['windows_evaluated']}: {esc(failed)}</td></tr>"
            )
        parts.append("</table>")
    cost = "n/a (no price for this model)" if s["cost_usd"] is None else f"${s['cost_usd']:.4f}"
    parts.append("<h2>Summary</h2><table>")
    for label, value in (
        ("requests", s["requests"]),
        ("succeeded", s["succeeded"]),
        ("failed", s["failed"]),
        ("error rate", f"{100 * s['error_rate']:.2f} %"),
        ("target rate (req/s)", s["target_rps"]),
        ("achieved rate (req/s)", s["achieved_rps"]),
        ("output tokens / s", s["output_tokens_per_s"]),
        ("estimated cost", cost),
        ("schedule lag p99 (ms)", s["schedule_lag_ms"]["p99"]),
    ):
        parts.append(f"<tr><td>{label}</td><td>{_cell(value)}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Latency (ms)</h2><table><tr><th>metric</th>")
    cols = ("p50", "p90", "p95", "p99", "max", "count")
    parts.append("".join(f"<th>{c}</th>" for c in cols) + "</tr>")
    for section, suffix in (("latency", ""), ("latency_from_intended_send", " from intended send")):
        for name, stats in report[section].items():
            if suffix and name in ("itl_ms", "tpot_ms"):
                continue
            parts.append(
                f"<tr><td>{name}{suffix}</td>" + "".join(f"<td>{_cell(stats[c])}</td>" for c in cols)
            )
    parts.append("</table>")
    if s["errors_by_type"]:
        parts.append("<h2>Errors</h2><table><tr><th>type</th><th>count</th><th>example</th></tr>")
        for kind, n in s["errors_by_type"].items():
            example = (report["errors"]["examples"].get(kind) or [""])[0]
            parts.append(f"<tr><td>{esc(kind)}</td><td>{n}</td><td>{esc(example)}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Plots</h2><div class=grid>")
    parts.append(_img(PLOT_IDS[0], "Latency CDFs", latency_cdf_plot(report)))
    parts.append(_img(PLOT_IDS[1], "Request rate: target vs achieved", rps_plot(report, spec)))
    parts.append(_img(PLOT_IDS[2], "Error rate over time", errors_plot(report)))
    parts.append(_img(PLOT_IDS[3], "TTFT vs prompt length", ttft_scatter(report)))
    parts.append("</div>")
    parts.append(
        "<h2>Windows</h2><table><tr><th>window (s)</th><th>target rps</th><th>achieved rps</th>"
        "<th>requests</th><th>errors</th><th>TTFT p95</th><th>ITL p90</th><th>E2E p95</th>"
        "<th>SLOs failed</th></tr>"
    )
    for w in report["windows"]:
        lat = w["latency"]
        failed_slos = esc(", ".join(w.get("slo_failed", [])) or "–")
        parts.append(
            f"<tr><td>{w['start_s']:g}–{w['end_s']:g}</td><td>{_cell(w['target_rps'])}</td>"
            f"<td>{_cell(w['achieved_rps'])}</td><td>{w['requests']}</td><td>{w['failed']}</td>"
            f"<td>{_cell(lat['ttft_ms']['p95'])}</td><td>{_cell(lat['itl_ms']['p90'])}</td>"
            f"<td>{_cell(lat['e2e_ms']['p95'])}</td>"
            f"<td class={'fail' if w.get('slo_failed') else 'pass'}>{failed_slos}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "".join(parts)
