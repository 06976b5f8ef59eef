"""`llmsim report merge|compare|html`: combine workers' partial results, compare two reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from llmsim.errors import LLMSimError
from llmsim.loadgen import compare, pricing, report


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="merge partial load results, compare reports, render HTML")
    sub = parser.add_subparsers(dest="report_command", metavar="ACTION")
    sub.required = True

    merge = sub.add_parser("merge", help="combine the partial-*.json of a parallel run into one report")
    merge.add_argument("partials", nargs="+", type=Path, metavar="PARTIAL")
    merge.add_argument("--out", type=Path, default=Path("llmsim-report"), metavar="DIR", help="output folder")
    merge.add_argument(
        "--prices", type=Path, metavar="FILE", help="YAML list of model prices overriding the table"
    )
    merge.add_argument("--no-html", action="store_true", help="write report.json only")
    merge.add_argument("--quiet", action="store_true", help="no summary table")
    merge.set_defaults(func=cmd_merge)

    cmp = sub.add_parser(
        "compare",
        help="compare two report.json files; exit 1 when the candidate regressed",
        description="Flags latency percentiles that grew, error rates that rose and throughput that fell "
        "beyond the thresholds, and SLOs that went from pass to fail. Exit code 1 on any regression.",
    )
    cmp.add_argument("baseline", type=Path, metavar="BASELINE")
    cmp.add_argument("candidate", type=Path, metavar="CANDIDATE")
    defaults = compare.Thresholds()
    cmp.add_argument(
        "--latency-pct", type=float, default=defaults.latency_pct, help="allowed latency growth (%%)"
    )
    cmp.add_argument(
        "--latency-min-ms",
        type=float,
        default=defaults.latency_min_ms,
        help="ignore latency growth below this (ms)",
    )
    cmp.add_argument(
        "--error-rate-pp", type=float, default=defaults.error_rate_pp, help="allowed error-rate rise (points)"
    )
    cmp.add_argument(
        "--throughput-pct", type=float, default=defaults.throughput_pct, help="allowed throughput drop (%%)"
    )
    cmp.set_defaults(func=cmd_compare)

    render = sub.add_parser("html", help="render report.html from a report.json")
    render.add_argument("report", type=Path, metavar="REPORT")
    render.add_argument("--out", type=Path, metavar="FILE", help="default: report.html next to REPORT")
    render.set_defaults(func=cmd_html)


def cmd_merge(args: argparse.Namespace) -> int:
    from llmsim.loadgen import console as live_console
    from llmsim.loadgen import job

    try:
        prices = pricing.load_price_file(args.prices) if args.prices else []
        spec, merged = report.merge_partials([report.read_partial(p) for p in args.partials])
        doc, paths = job.write_report(
            spec, merged, args.out, price_overrides=prices, with_html=not args.no_html
        )
    except LLMSimError as exc:
        print(f"llmsim report merge: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        live_console.print_summary(doc, Console())
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    th = compare.Thresholds(
        latency_pct=args.latency_pct,
        latency_min_ms=args.latency_min_ms,
        error_rate_pp=args.error_rate_pp,
        throughput_pct=args.throughput_pct,
    )
    try:
        rows = compare.compare(report.read_json(args.baseline), report.read_json(args.candidate), th)
    except LLMSimError as exc:
        print(f"llmsim report compare: {exc}", file=sys.stderr)
        return 2
    table = Table(title=f"{args.baseline} -> {args.candidate}", title_justify="left")
    for col in ("metric", "baseline", "candidate", "change", ""):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in rows:
        table.add_row(
            row.metric,
            "-" if row.baseline is None else f"{row.baseline:,.3f}",
            "-" if row.candidate is None else f"{row.candidate:,.3f}",
            row.change,
            "[red]REGRESSION[/]" if row.regressed else "ok",
        )
    console = Console()
    console.print(table)
    regressions = [r.metric for r in rows if r.regressed]
    if regressions:
        console.print(f"[red]regressed:[/] {', '.join(regressions)}")
        return 1
    console.print("no regression")
    return 0


def cmd_html(args: argparse.Namespace) -> int:
    from llmsim.loadgen import html

    try:
        doc = report.read_json(args.report)
        text = html.render(doc)
    except LLMSimError as exc:
        print(f"llmsim report html: {exc}", file=sys.stderr)
        return 2
    except (KeyError, TypeError, ValueError) as exc:
        print(f"llmsim report html: {args.report}: not a valid llmsim report ({exc})", file=sys.stderr)
        return 2
    target = args.out or args.report.with_name("report.html")
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0
