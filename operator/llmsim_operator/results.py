"""Worker results of a LoadScenario run, pure: carried in worker logs, merged into one report,
summarised into the resource's status."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Sequence
from typing import Any

from llmsim.api import status
from llmsim.api.scenario import LoadScenarioSpec
from llmsim.loadgen import report
from llmsim.loadgen.results import PARTIAL_KIND, Partial

MARKER = "LLMSIM-RESULT "
"""Prefix of the log line that carries a worker's result (base64 of gzip of JSON)."""


def encode(doc: dict[str, Any]) -> str:
    """The log line a worker prints."""
    return MARKER + base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode("ascii")


def decode(log_text: str) -> dict[str, Any] | None:
    """The result carried by a worker's log (the last marker line wins), or None."""
    for line in reversed(log_text.splitlines()):
        if line.startswith(MARKER):
            try:
                doc = json.loads(gzip.decompress(base64.b64decode(line[len(MARKER) :])))
            except (ValueError, OSError):
                return None
            return doc if isinstance(doc, dict) else None
    return None


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One report.json from the workers' documents: a full report (parallelism 1) is taken as it is;
    partials are merged exactly (counts and histograms) and rendered with the load generator's own
    report builder. Missing workers are noted in the report (`run.notes`, `run.complete: false`)."""
    partials = [d for d in docs if d.get("kind") == PARTIAL_KIND]
    if not partials:
        if not docs:
            raise ValueError("no worker produced a result")
        return docs[0]
    items = [
        (LoadScenarioSpec.model_validate(d["scenario"]), Partial.from_dict(d["partial"])) for d in partials
    ]
    spec, merged = report.merge_partials(items)
    return report.build(spec, merged, price_overrides=list(spec.pricing))


def _percentiles(block: dict[str, Any] | None) -> status.Percentiles:
    block = block or {}
    return status.Percentiles(p50=block.get("p50"), p95=block.get("p95"), p99=block.get("p99"))


def summarise(doc: dict[str, Any]) -> status.RunSummary:
    """The status summary of a report.json."""
    summary = doc.get("summary") or {}
    latency = doc.get("latency") or {}
    verdicts = [
        status.SloVerdict(
            name=o["name"], met=o.get("passed") is True, actual=o.get("value"), target=o.get("threshold")
        )
        for o in (doc.get("slo") or {}).get("objectives", [])
    ]
    return status.RunSummary(
        requests=int(summary.get("requests", 0)),
        errors=int(summary.get("failed", 0)),
        achieved_rps=float(summary.get("achieved_rps", 0.0)),
        error_rate=float(summary.get("error_rate", 0.0)),
        ttft_ms=_percentiles(latency.get("ttft_ms")),
        itl_ms=_percentiles(latency.get("itl_ms")),
        e2e_ms=_percentiles(latency.get("e2e_ms")),
        slos=verdicts,
    )


def slo_verdict(summary: status.RunSummary | None) -> str:
    """`Met`, `Violated` or `None` (no SLOs, or no result)."""
    if summary is None or not summary.slos:
        return "None"
    return "Met" if all(v.met for v in summary.slos) else "Violated"


def job_phase(job_status: dict[str, Any] | None) -> status.ScenarioPhase:
    """The run's phase from its Job's status."""
    st = job_status or {}
    for cond in st.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return status.ScenarioPhase.SUCCEEDED
        if cond.get("type") in ("Failed", "FailureTarget"):
            return status.ScenarioPhase.FAILED
    if (st.get("active") or 0) > 0 or (st.get("succeeded") or 0) > 0 or (st.get("ready") or 0) > 0:
        return status.ScenarioPhase.RUNNING
    return status.ScenarioPhase.PENDING


def collect(logs: Iterable[str]) -> list[dict[str, Any]]:
    """The decodable results among worker logs."""
    return [doc for doc in (decode(text) for text in logs) if doc is not None]
