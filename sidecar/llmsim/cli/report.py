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
from llmsim.loadgen.console import console_format


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
        help="compare two report.json files; exit 1 when the candidate regressed significantly",
        description="Decides per metric with confidence intervals that account for sample size and the "
        "histograms' resolution: a metric regressed when the change is significant (family-wise "
        "false-alarm rate --alpha, split over the tests) and beyond its threshold. Metrics with too few "
        "samples get 'not enough data'. Exit code 1 on any regression, 2 on bad input.",
    )
    cmp.add_argument("baseline", type=Path, metavar="BASELINE")
    cmp.add_argument("candidate", type=Path, metavar="CANDIDATE")
    defaults = compare.Thresholds()
    options = compare.Options()
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
    cmp.add_argument(
        "--alpha",
        type=float,
        default=options.alpha,
        help="family-wise false-alarm rate over all tested metrics (default %(default)s)",
    )
    cmp.add_argument(
        "--min-samples",
        type=int,
        default=options.min_samples,
        metavar="N",
        help="'not enough data' below N samples in either run (default %(default)s)",
    )
    cmp.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON")
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


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:+,.1f}{unit}" if unit else console_format(value)


VERDICT_STYLE = {
    compare.Verdict.REGRESSION: "[red]REGRESSION[/]",
    compare.Verdict.IMPROVEMENT: "[green]improvement[/]",
    compare.Verdict.NOT_ENOUGH: "[yellow]not enough data[/]",
}


def cmd_compare(args: argparse.Namespace) -> int:
    th = compare.Thresholds(
        latency_pct=args.latency_pct,
        latency_min_ms=args.latency_min_ms,
        error_rate_pp=args.error_rate_pp,
        throughput_pct=args.throughput_pct,
    )
    opts = compare.Options(alpha=args.alpha, min_samples=args.min_samples)
    try:
        result = compare.compare(report.read_json(args.baseline), report.read_json(args.candidate), th, opts)
        if args.json is not None:
            report.write_json(args.json, result.to_dict())
    except LLMSimError as exc:
        print(f"llmsim report compare: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"llmsim report compare: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    level = 100 * result.per_test_level
    table = Table(
        title=f"{args.baseline} -> {args.candidate}",
        title_justify="left",
        caption=f"interval ends: one-sided {level:.2f} % bounds (family false-alarm rate "
        f"{100 * result.alpha:g} % over {result.tests} tests, Bonferroni; histogram resolution included)",
        caption_justify="left",
    )
    for col in ("metric", "baseline", "candidate", "change", "interval", "n", "verdict"):
        table.add_column(col, justify="left" if col in ("metric", "verdict") else "right")
    for row in result.rows:
        interval = "" if row.low is None else f"[{_num(row.low, row.unit)}, {_num(row.high, row.unit)}]"
        verdict = VERDICT_STYLE.get(row.verdict, row.verdict.value)
        table.add_row(
            row.metric,
            _num(row.baseline),
            _num(row.candidate),
            _num(row.change, row.unit),
            interval,
            "" if row.samples == (0, 0) else f"{row.samples[0]}/{row.samples[1]}",
            verdict + (f" ({row.note})" if row.note else ""),
        )
    out = Console() if sys.stdout.isatty() else Console(width=150)  # CI logs: no wrapped cells
    out.print(table)
    insufficient = [r.metric for r in result.rows if r.verdict == compare.Verdict.NOT_ENOUGH]
    if insufficient:
        out.print(f"[yellow]not enough data[/] (not judged): {', '.join(insufficient)}", soft_wrap=True)
    if result.regressions:
        out.print(f"[red]regressed:[/] {', '.join(r.metric for r in result.regressions)}", soft_wrap=True)
        return 1
    out.print("no regression")
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
