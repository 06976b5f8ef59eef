"""`llmsim load`: run a load scenario against an LLM endpoint and write report.json + report.html.

Exit codes: 0 the run completed and every SLO passed; 1 an SLO failed; 2 bad input (scenario,
flags, API key); 3 the run could not complete (target unreachable, key rejected, interrupted)
— a partial report is still written.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from llmsim import redact
from llmsim.api.scenario import ApiKeySource, LoadScenarioSpec, Steady, TargetProvider
from llmsim.errors import LLMSimError
from llmsim.loadgen import pricing
from llmsim.loadgen.scenario_file import ScenarioError, load_file, parse

EXIT_SLO_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load",
        help="run a load scenario against an LLM endpoint; writes report.json and report.html",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", type=Path, metavar="FILE", help="LoadScenario spec (YAML/JSON)")
    parser.add_argument("--target", metavar="URL", help="base URL of the endpoint (overrides target.url)")
    parser.add_argument("--provider", choices=[p.value for p in TargetProvider], help="wire format")
    parser.add_argument("--model", help="model (Azure: deployment) name")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="run length (overrides durationS)")
    parser.add_argument("--rps", type=float, help="use a steady pattern at this rate (overrides pattern)")
    parser.add_argument("--seed", type=int, help="seed of the schedule and request mix")
    parser.add_argument(
        "--out", type=Path, default=Path("llmsim-report"), metavar="DIR", help="output folder"
    )
    parser.add_argument("--parallelism", type=int, metavar="N", help="number of workers sharing the schedule")
    parser.add_argument("--worker-index", type=int, metavar="I", help="which worker this is (0..N-1)")
    parser.add_argument(
        "--api-key-env", metavar="VAR", help="read the API key from this environment variable"
    )
    parser.add_argument("--api-key-file", type=Path, metavar="FILE", help="read the API key from this file")
    parser.add_argument(
        "--prices", type=Path, metavar="FILE", help="YAML list of model prices overriding the table"
    )
    parser.add_argument("--no-html", action="store_true", help="write report.json only")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary table")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio event loop")
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics of the run (llmsim_load_*) on HOST:PORT/metrics while it runs",
    )
    parser.add_argument(
        "--metrics-linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep serving the metrics this long after the run (at least one scrape interval)",
    )
    parser.set_defaults(func=cmd_load)


def loop_factory(no_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when available (tighter scheduling), unless disabled."""
    if no_uvloop:
        return None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency on Linux/macOS
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def build_spec(args: argparse.Namespace) -> LoadScenarioSpec:
    """The scenario file (or defaults) with the command-line overrides applied."""
    if args.scenario is not None:
        spec = load_file(args.scenario)
        source = str(args.scenario)
    else:
        spec = LoadScenarioSpec()
        source = "<flags>"
    doc = spec.model_dump(mode="json", by_alias=True)
    target = doc["target"]
    if args.target is not None:
        target["url"] = args.target
    if args.provider is not None:
        target["provider"] = args.provider
    if args.model is not None:
        target["model"] = args.model
    if args.api_key_env is not None:
        target["apiKey"] = ApiKeySource(env=args.api_key_env).model_dump(mode="json", exclude_none=True)
    if args.api_key_file is not None:
        target["apiKey"] = ApiKeySource(file=str(args.api_key_file)).model_dump(
            mode="json", exclude_none=True
        )
    if args.duration is not None:
        doc["durationS"] = args.duration
    if args.rps is not None:
        doc["pattern"] = Steady(rps=args.rps).model_dump(mode="json")
    if args.seed is not None:
        doc["seed"] = args.seed
    if args.parallelism is not None:
        doc["parallelism"] = args.parallelism
    return parse(doc, f"{source} with command-line overrides")


def metrics_address(text: str) -> tuple[str, int]:
    """`--metrics HOST:PORT` -> (host, port); LLMSimError naming the flag."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise LLMSimError(f"--metrics: {text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def cmd_load(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        spec = build_spec(args)
        if spec.parallelism > 1 and args.worker_index is None:
            last = spec.parallelism - 1
            raise LLMSimError(
                f"the scenario has parallelism {spec.parallelism}: pass --worker-index I (0..{last}) and "
                "merge the partials with `llmsim report merge`, or pass --parallelism 1"
            )
        if args.worker_index is not None and not 0 <= args.worker_index < spec.parallelism:
            raise LLMSimError(f"--worker-index {args.worker_index} is outside 0..{spec.parallelism - 1}")
        prices = pricing.load_price_file(args.prices) if args.prices else []
        address = metrics_address(args.metrics) if args.metrics else None
        if args.metrics_linger < 0:
            raise LLMSimError(f"--metrics-linger: {args.metrics_linger:g} must be >= 0")
    except ScenarioError as exc:
        for problem in exc.problems:
            print(f"llmsim load: {exc.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LLMSimError as exc:
        print(redact.redact_text(f"llmsim load: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    # Imported here: the run pulls in aiohttp and matplotlib, which `llmsim --help` does not need.
    from llmsim.loadgen import console as live_console
    from llmsim.loadgen import job

    base_dir = args.scenario.parent if args.scenario is not None else None
    out = Console()
    show = not args.quiet
    exporter = None
    metrics = None
    if address is not None:
        from llmsim.loadgen import metrics as load_metrics

        metrics = load_metrics.LoadMetrics(spec.target.provider.value, spec.target.model)
        try:
            exporter = load_metrics.MetricsEndpoint(metrics.registry, *address)
        except OSError as exc:
            print(f"llmsim load: --metrics {args.metrics}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        host, port = exporter.address
        print(f"llmsim load: metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    try:
        with asyncio.Runner(loop_factory=loop_factory(args.no_uvloop)) as loop_runner:
            result = loop_runner.run(
                job.run_scenario(
                    spec,
                    args.out,
                    worker_index=args.worker_index,
                    base_dir=base_dir,
                    price_overrides=prices,
                    with_html=not args.no_html,
                    console=err,
                    progress=show and err.is_terminal,
                    metrics=metrics,
                )
            )
    except LLMSimError as exc:
        print(redact.redact_text(f"llmsim load: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"llmsim load: cannot write results to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if exporter is not None:
            time.sleep(args.metrics_linger)  # the last scrape sees the final counts
            exporter.close()
    for note in result.partial.notes:
        print(redact.redact_text(f"llmsim load: {note}"), file=sys.stderr)
    if result.report is None:
        total = result.partial.total
        print(f"worker {args.worker_index}: {total.requests} requests, {total.failed} failed")
        print(f"wrote {result.paths[0]}")
        return EXIT_INCOMPLETE if result.partial.notes else 0
    if show:
        live_console.print_summary(result.report, out)
    for path in result.paths:
        print(f"wrote {path}")
    if not result.report["run"]["complete"]:
        return EXIT_INCOMPLETE
    return 0 if result.report["slo"]["passed"] else EXIT_SLO_FAILED
