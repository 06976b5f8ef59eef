"""Sections of report.json beyond the overall figures (pure): availability, concurrency, the
per-model breakdown and the workflows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llmsim.api.scenario import ClosedLoop, LoadScenarioSpec, ModelPrice, WorkflowRun
from llmsim.loadgen import closedloop, pricing
from llmsim.loadgen.histogram import LogHistogram
from llmsim.loadgen.results import LATENCY_METRICS, Partial, Stats
from llmsim.loadgen.wire import ErrorType
from llmsim.loadgen.workflow_stats import WorkflowStats

PERCENTILES = (0.5, 0.9, 0.95, 0.99)
TARGET_SIDE_ERRORS = frozenset(
    {
        ErrorType.CONNECT.value,
        ErrorType.TIMEOUT.value,
        ErrorType.OVERLOADED.value,
        ErrorType.SERVER_ERROR.value,
        ErrorType.MIDSTREAM_ERROR.value,
        ErrorType.DISCONNECT.value,
        ErrorType.MALFORMED.value,
    }
)
"""Failures that count against availability: the target or the network failed. Answers that are
about the request or the caller (rate_limit, quota, auth, bad_request, context_length, not_found,
other 4xx) do not."""


def latency_block(hists: Mapping[str, LogHistogram]) -> dict[str, dict[str, float | None]]:
    return {name: hists[name].summary(PERCENTILES) for name in LATENCY_METRICS}


def availability(stats: Stats) -> float | None:
    """Share of requests the target served (not failed on its side or the network's)."""
    if not stats.requests:
        return None
    down = sum(n for kind, n in stats.errors.items() if kind in TARGET_SIDE_ERRORS)
    return round(1 - down / stats.requests, 6)


def target_concurrency(spec: LoadScenarioSpec, start_s: float, end_s: float) -> float | None:
    """Mean nominal concurrency (users or parallel workflows started) over a window; None for rate curves."""
    pattern = spec.pattern
    if not isinstance(pattern, ClosedLoop | WorkflowRun):
        return None
    slots = pattern.users if isinstance(pattern, ClosedLoop) else pattern.parallel_workflows
    t = np.linspace(start_s, end_s, 64, endpoint=False)
    return round(float(np.mean(closedloop.target_slots(t, slots, pattern.ramp_up_s))), 3)


def models_section(
    spec: LoadScenarioSpec, partial: Partial, overrides: Sequence[ModelPrice]
) -> dict[str, dict[str, Any]]:
    """Per model of a `requests.models` mix: counts, errors, latencies and cost."""
    out: dict[str, dict[str, Any]] = {}
    for model, st in sorted(partial.by_model.items()):
        price = pricing.find_price(model, spec.pricing, overrides)
        out[model] = {
            "requests": st.requests,
            "succeeded": st.succeeded,
            "failed": st.failed,
            "error_rate": round(st.failed / st.requests, 6) if st.requests else 0.0,
            "availability": availability(st),
            "errors_by_type": dict(sorted(st.errors.items())),
            "prompt_tokens": st.prompt_tokens,
            "output_tokens": st.output_tokens,
            "cost_usd": None
            if price is None
            else round(pricing.cost_usd(price, st.prompt_tokens, st.output_tokens), 6),
            "latency": latency_block(st.latency),
        }
    return out


def workflows_section(spec: LoadScenarioSpec, workflows: Mapping[str, WorkflowStats]) -> dict[str, Any]:
    """Per workflow: conversations, success rate, end-to-end latency and per-turn latencies."""
    flows = {w.id: w for w in spec.workflows}
    out: dict[str, Any] = {}
    for wid, st in sorted(workflows.items()):
        finished = st.succeeded + st.failed
        turns = []
        for k, ts in enumerate(st.turns):
            text = flows[wid].turns[k].user if wid in flows and k < len(flows[wid].turns) else ""
            turns.append(
                {
                    "turn": k,
                    "user": text[:80],
                    "completed": ts.completed,
                    "failed": ts.failed,
                    "requests": ts.requests,
                    "tool_rounds": ts.tool_rounds,
                    "e2e_ms": ts.e2e_ms.summary(PERCENTILES),
                    "ttft_ms": ts.ttft_ms.summary(PERCENTILES),
                }
            )
        out[wid] = {
            "started": st.started,
            "succeeded": st.succeeded,
            "failed": st.failed,
            "abandoned": st.abandoned,
            "success_rate": round(st.succeeded / finished, 6) if finished else None,
            "failures": dict(sorted(st.failures.items())),
            "e2e_ms": st.e2e_ms.summary(PERCENTILES),
            "turns": turns,
        }
    return out
