"""report.json: build it from a scenario and a (merged) Partial; read and write it (schema in
docs/loadgen.md). Pure except for the small read/write helpers at the end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmsim import __version__, redact
from llmsim.api.scenario import ClosedLoop, LoadScenarioSpec, ModelPrice, WorkflowRun
from llmsim.errors import LLMSimError
from llmsim.loadgen import patterns, pricing, recommendations, slo
from llmsim.loadgen import report_sections as sections
from llmsim.loadgen.histogram import LogHistogram
from llmsim.loadgen.report_sections import availability, latency_block, target_concurrency
from llmsim.loadgen.results import (
    LATENCY_METRICS,
    PARTIAL_KIND,
    PARTIAL_VERSION,
    READABLE_PARTIAL_VERSIONS,
    Partial,
    Stats,
)

SCHEMA_VERSION = 2
PERCENTILES = sections.PERCENTILES
REDACTED = redact.REDACTED


def scenario_for_report(spec: LoadScenarioSpec) -> dict[str, Any]:
    """The scenario as JSON with credentials removed (`llmsim.redact`): credential headers, URL
    userinfo and credential query parameters (API keys configured the proper way, via apiKey, are
    never in the spec)."""
    doc: dict[str, Any] = redact.redact_document(spec.model_dump(mode="json", by_alias=True))
    return doc


def _rate(n: float, seconds: float) -> float:
    return round(n / seconds, 4) if seconds > 0 else 0.0


def build(
    spec: LoadScenarioSpec,
    partial: Partial,
    *,
    price_overrides: Sequence[ModelPrice] = (),
) -> dict[str, Any]:
    """The report document (a plain JSON-ready dict)."""
    total = partial.total
    duration = spec.duration_s
    pattern = spec.pattern
    rate_curve = None if isinstance(pattern, ClosedLoop | WorkflowRun) else pattern
    expected = (
        None
        if rate_curve is None
        else patterns.expected_count(rate_curve, duration, 0.0, duration, spec.seed)
    )
    cost, cost_section = _cost(spec, partial, price_overrides)
    elapsed = max(partial.elapsed_s, 1e-9)
    windows = []
    for i, win in enumerate(partial.windows):
        start = i * partial.window_s
        end = min(duration, start + partial.window_s)
        span = max(end - start, 1e-9)
        st = win.stats
        windows.append(
            {
                "index": i,
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "target_rps": None
                if rate_curve is None
                else _rate(patterns.expected_count(rate_curve, duration, start, end, spec.seed), span),
                "achieved_rps": _rate(win.sent, span),
                "concurrency": round(win.busy_s / partial.window_s, 3),
                "target_concurrency": target_concurrency(spec, start, end),
                "requests": st.requests,
                "succeeded": st.succeeded,
                "failed": st.failed,
                "error_rate": round(st.failed / st.requests, 6) if st.requests else 0.0,
                "availability": availability(st),
                "errors_by_type": dict(sorted(st.errors.items())),
                "output_tokens_per_s": _rate(st.output_tokens, span),
                "latency": latency_block(st.latency),
                "latency_from_intended_send": latency_block(st.intended),
            }
        )
    slo_section = slo.evaluate(spec.slos, total, [w.stats for w in partial.windows], partial.window_s)
    for objective in slo_section["objectives"]:
        for i in objective["windows_failed"]:
            windows[i].setdefault("slo_failed", []).append(objective["name"])
    complete = not partial.notes and len(partial.workers) == partial.parallelism
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generator": f"llmsim {__version__}",
        "scenario": scenario_for_report(spec),
        "run": {
            "started_at": partial.started_at,
            "duration_s": duration,
            "elapsed_s": round(partial.elapsed_s, 3),
            "workers": partial.workers,
            "parallelism": partial.parallelism,
            "window_s": partial.window_s,
            "scheduled": partial.scheduled,
            "complete": complete,
            "notes": partial.notes,
        },
        "summary": {
            "requests": total.requests,
            "succeeded": total.succeeded,
            "failed": total.failed,
            "target_rps": None if expected is None else _rate(expected, duration),
            "achieved_rps": _rate(total.requests, duration),
            "output_tokens": total.output_tokens,
            "prompt_tokens": total.prompt_tokens,
            "output_tokens_per_s": _rate(total.output_tokens, elapsed),
            "error_rate": round(total.failed / total.requests, 6) if total.requests else 0.0,
            "availability": availability(total),
            "concurrency": {
                "mean": round(partial.busy_s / elapsed, 3) if total.requests else 0.0,
                "max_window": round(
                    max((w.busy_s for w in partial.windows), default=0.0) / partial.window_s, 3
                ),
            },
            "errors_by_type": dict(sorted(total.errors.items())),
            "cost_usd": cost,
            "schedule_lag_ms": partial.lag_ms.summary(PERCENTILES),
        },
        "latency": latency_block(total.latency),
        "latency_from_intended_send": latency_block(total.intended),
        "windows": windows,
        "slo": slo_section,
        "cost": cost_section,
        "errors": {"by_type": dict(sorted(total.errors.items())), "examples": partial.examples},
        "by_model": sections.models_section(spec, partial, price_overrides),
        "workflows": sections.workflows_section(spec, partial.workflows),
        "samples": {"prompt_tokens_vs_ttft_ms": [list(p) for p in partial.samples]},
        "histograms": {
            "latency": {k: total.latency[k].to_dict() for k in LATENCY_METRICS},
            "latency_from_intended_send": {k: total.intended[k].to_dict() for k in LATENCY_METRICS},
            "schedule_lag_ms": partial.lag_ms.to_dict(),
            "workflows": {k: {"e2e_ms": w.e2e_ms.to_dict()} for k, w in sorted(partial.workflows.items())},
        },
    }
    doc["recommendations"] = recommendations.derive(doc)
    redacted: dict[str, Any] = redact.redact_document(doc)  # notes, error examples, messages
    return redacted


def _cost(
    spec: LoadScenarioSpec, partial: Partial, overrides: Sequence[ModelPrice]
) -> tuple[float | None, dict[str, Any]]:
    """The estimated cost and the `cost` section: one model's price, or the sum over a model mix."""
    total = partial.total
    if not partial.by_model:
        price = pricing.find_price(spec.target.model, spec.pricing, overrides)
        usd = (
            None
            if price is None
            else round(pricing.cost_usd(price, total.prompt_tokens, total.output_tokens), 6)
        )
        return usd, {"usd": usd, "model": spec.target.model, "price": _price(price)}
    priced: dict[str, float] = {}
    unpriced: list[str] = []
    prices: dict[str, Any] = {}
    for model, st in sorted(partial.by_model.items()):
        price = pricing.find_price(model, spec.pricing, overrides)
        prices[model] = _price(price)
        if price is None:
            unpriced.append(model)
        else:
            priced[model] = pricing.cost_usd(price, st.prompt_tokens, st.output_tokens)
    usd = round(sum(priced.values()), 6) if priced else None
    section = {"usd": usd, "model": None, "price": None, "by_model": prices, "unpriced_models": unpriced}
    return usd, section


def _price(price: pricing.Price | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {
        "pattern": price.pattern,
        "input_per_million_usd": price.input_per_million_usd,
        "output_per_million_usd": price.output_per_million_usd,
        "source": price.source,
    }


def histograms_of(report: dict[str, Any]) -> dict[str, LogHistogram]:
    """The overall latency histograms stored in a report (for plotting CDFs)."""
    return {k: LogHistogram.from_dict(v) for k, v in report["histograms"]["latency"].items()}


# --- files -----------------------------------------------------------------------------------


def partial_document(spec: LoadScenarioSpec, partial: Partial) -> dict[str, Any]:
    """A worker's result (written to a file and printed to its log for the operator): redacted."""
    doc = {
        "kind": PARTIAL_KIND,
        "version": PARTIAL_VERSION,
        "scenario": scenario_for_report(spec),
        "partial": partial.to_dict(),
    }
    redacted: dict[str, Any] = redact.redact_document(doc)
    return redacted


def read_partial(path: Path) -> tuple[LoadScenarioSpec, Partial]:
    doc = read_json(path)
    if doc.get("kind") != PARTIAL_KIND:
        raise LLMSimError(
            f"{path}: not a partial result of `llmsim load --worker-index` (kind {doc.get('kind')!r})"
        )
    if doc.get("version") not in READABLE_PARTIAL_VERSIONS:
        readable = " or ".join(str(v) for v in READABLE_PARTIAL_VERSIONS)
        raise LLMSimError(f"{path}: partial version {doc.get('version')!r} is not {readable}")
    try:
        spec = LoadScenarioSpec.model_validate(doc["scenario"])
        return spec, Partial.from_dict(doc["partial"])
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise LLMSimError(f"{path}: malformed partial result: {exc}") from None


def merge_partials(items: Sequence[tuple[LoadScenarioSpec, Partial]]) -> tuple[LoadScenarioSpec, Partial]:
    """Combine workers' partials of one scenario (exact for counts and histograms)."""
    if not items:
        raise LLMSimError("nothing to merge")
    spec, first = items[0]
    merged = Partial(window_s=first.window_s, n_windows=first.n_windows, parallelism=first.parallelism)
    merged.total = Stats()
    for other_spec, part in items:
        if other_spec != spec:
            raise LLMSimError("partials come from different scenarios; merge only workers of one run")
        try:
            merged.merge(part)
        except ValueError as exc:
            raise LLMSimError(str(exc)) from None
    missing = sorted(set(range(merged.parallelism)) - set(merged.workers))
    if missing:
        merged.notes.append(f"partial: results of worker(s) {missing} are missing")
    return spec, merged


def read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LLMSimError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LLMSimError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise LLMSimError(f"{path}: expected a JSON object")
    return doc


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
