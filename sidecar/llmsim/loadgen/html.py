"""report.html: one self-contained page (inline CSS, plots as base64 PNG) built from report.json."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from matplotlib.figure import Figure

from llmsim.api.scenario import LoadScenarioSpec
from llmsim.errors import LLMSimError
from llmsim.loadgen import html_plots as plots
from llmsim.loadgen.report import SCHEMA_VERSION

PLOT_IDS = (
    "latency-cdf",
    "rps-over-time",
    "errors-over-time",
    "ttft-vs-prompt",
    "latency-over-time",
    "errors-by-type",
    "concurrency-over-time",
)
"""`id`s of the plot images on every page (tests and users' scrapers look for them)."""
OPTIONAL_PLOT_IDS = ("by-model", "workflow-turns")
"""Plots drawn only when the run has a model mix or workflows."""

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;
text-align:right}th:first-child,td:first-child{text-align:left}.pass{color:#176b1d;font-weight:bold}.fail{color:#b00020;font-weight:bold}
.nodata{color:#8a6d00}.note{background:#fff6d6;padding:.4rem .8rem;border-left:4px solid #e0b000}
.rec{background:#eef6ff;padding:.4rem .8rem;border-left:4px solid #1f77b4;margin:.4rem 0}
.rec.warning{background:#f6f1fa;border-left-color:#d2561d}.rec small{color:#555}
img{max-width:100%;height:auto}.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}code{font-size:.9em}
"""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(plot_id: str, title: str, fig: Figure) -> str:
    src = f"data:image/png;base64,{_png(fig)}"
    return f'<figure><img id="{plot_id}" alt="{html.escape(title)}" src="{src}"></figure>'


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


def _models(report: dict[str, Any]) -> list[str]:
    if not report["by_model"]:
        return []
    out = [
        "<h2 id=by-model-table>Per model</h2><table><tr><th>model</th><th>requests</th><th>error rate</th>"
        "<th>TTFT p50</th><th>TTFT p95</th><th>E2E p95</th><th>cost (USD)</th></tr>"
    ]
    for model, m in report["by_model"].items():
        lat = m["latency"]
        out.append(
            f"<tr><td>{html.escape(model)}</td><td>{m['requests']}</td><td>{100 * m['error_rate']:.2f} %</td>"
            f"<td>{_cell(lat['ttft_ms']['p50'])}</td><td>{_cell(lat['ttft_ms']['p95'])}</td>"
            f"<td>{_cell(lat['e2e_ms']['p95'])}</td>"
            f"<td>{'–' if m['cost_usd'] is None else f'{m["cost_usd"]:.4f}'}</td></tr>"
        )
    out.append("</table>")
    return out


def _workflows(report: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for wid, wf in report["workflows"].items():
        rate = "–" if wf["success_rate"] is None else f"{100 * wf['success_rate']:.1f} %"
        failures = ", ".join(f"{k} {v}" for k, v in wf["failures"].items()) or "none"
        out.append(
            f"<h2>Workflow <code>{html.escape(wid)}</code>: {rate} succeeded</h2><p>{wf['started']} started, "
            f"{wf['succeeded']} succeeded, {wf['failed']} failed ({html.escape(failures)}), {wf['abandoned']} "
            f"abandoned at the end of the run; conversation E2E p50 {_cell(wf['e2e_ms']['p50'])} ms, "
            f"p95 {_cell(wf['e2e_ms']['p95'])} ms.</p><table><tr><th>turn</th><th>user</th><th>completed</th>"
            "<th>failed</th><th>requests</th><th>tool rounds</th><th>E2E p50</th><th>E2E p95</th>"
            "<th>TTFT p50</th></tr>"
        )
        for t in wf["turns"]:
            out.append(
                f"<tr><td>{t['turn']}</td><td>{html.escape(t['user'])}</td><td>{t['completed']}</td>"
                f"<td>{t['failed']}</td><td>{t['requests']}</td><td>{t['tool_rounds']}</td>"
                f"<td>{_cell(t['e2e_ms']['p50'])}</td><td>{_cell(t['e2e_ms']['p95'])}</td>"
                f"<td>{_cell(t['ttft_ms']['p50'])}</td></tr>"
            )
        out.append("</table>")
    return out


def render(report: dict[str, Any]) -> str:
    """The whole page (of a schema 2 report; LLMSimError for another version)."""
    if report.get("schema_version") != SCHEMA_VERSION:
        raise LLMSimError(
            f"report.html is drawn from report.json schema_version {SCHEMA_VERSION}; this one is "
            f"{report.get('schema_version')!r} (run the scenario again with this llmsim)"
        )
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
    recs = report.get("recommendations", [])
    parts.append(f"<h2 id=recommendations>Recommendations ({len(recs)})</h2>")
    if not recs:
        parts.append("<p>None: no rule found evidence for one (see docs/loadgen.md, Recommendations).</p>")
    for rec in recs:
        evidence = ", ".join(
            f"{k} = {_cell(v)}" for k, v in rec["evidence"].items() if not isinstance(v, list | dict)
        )
        parts.append(
            f'<div class="rec {esc(rec["severity"])}"><b>{esc(rec["rule"])}</b>: {esc(rec["message"])}'
            f"<br><small>evidence: {evidence}</small></div>"
        )
    cost = "n/a (no price for this model)" if s["cost_usd"] is None else f"${s['cost_usd']:.4f}"
    parts.append("<h2>Summary</h2><table>")
    for label, value in (
        ("requests", s["requests"]),
        ("succeeded", s["succeeded"]),
        ("failed", s["failed"]),
        ("error rate", f"{100 * s['error_rate']:.2f} %"),
        ("availability", "–" if s["availability"] is None else f"{100 * s['availability']:.2f} %"),
        ("target rate (req/s)", s["target_rps"]),
        ("achieved rate (req/s)", s["achieved_rps"]),
        ("mean concurrency (in flight)", s["concurrency"]["mean"]),
        ("highest window concurrency", s["concurrency"]["max_window"]),
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
    parts.extend(_models(report))
    parts.extend(_workflows(report))
    parts.append("<h2>Plots</h2><div class=grid>")
    figures: list[tuple[str, str, Figure]] = [
        (PLOT_IDS[4], "Latency percentiles per window", plots.latency_over_time(report)),
        (PLOT_IDS[6], "Achieved concurrency over time", plots.concurrency_plot(report, spec)),
        (PLOT_IDS[5], "Errors by type over time", plots.errors_by_type(report)),
        (PLOT_IDS[2], "Error rate over time", plots.errors_plot(report)),
        (PLOT_IDS[1], "Request rate: target vs achieved", plots.rps_plot(report, spec)),
        (PLOT_IDS[0], "Latency CDFs", plots.latency_cdf_plot(report)),
        (PLOT_IDS[3], "TTFT vs prompt length", plots.ttft_scatter(report)),
    ]
    if len(report["by_model"]) > 1:
        figures.append((OPTIONAL_PLOT_IDS[0], "Latency per model", plots.by_model_plot(report)))
    if report["workflows"]:
        figures.append((OPTIONAL_PLOT_IDS[1], "Workflow turns", plots.workflow_turns_plot(report)))
    parts.extend(_img(plot_id, title, fig) for plot_id, title, fig in figures)
    parts.append("</div>")
    parts.append(
        "<h2>Windows</h2><table><tr><th>window (s)</th><th>target rps</th><th>achieved rps</th>"
        "<th>in flight</th><th>requests</th><th>errors</th><th>TTFT p95</th><th>ITL p90</th><th>E2E p95</th>"
        "<th>SLOs failed</th></tr>"
    )
    for w in report["windows"]:
        lat = w["latency"]
        failed_slos = esc(", ".join(w.get("slo_failed", [])) or "–")
        parts.append(
            f"<tr><td>{w['start_s']:g}–{w['end_s']:g}</td><td>{_cell(w['target_rps'])}</td>"
            f"<td>{_cell(w['achieved_rps'])}</td><td>{_cell(w['concurrency'])}</td>"
            f"<td>{w['requests']}</td><td>{w['failed']}</td>"
            f"<td>{_cell(lat['ttft_ms']['p95'])}</td><td>{_cell(lat['itl_ms']['p90'])}</td>"
            f"<td>{_cell(lat['e2e_ms']['p95'])}</td>"
            f"<td class={'fail' if w.get('slo_failed') else 'pass'}>{failed_slos}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "".join(parts)
