"""Recommendations derived from a report's measurements by stated rules (pure).

Every rule looks for specific evidence and, only when it finds it, returns one recommendation that
cites the numbers it rests on (`evidence`). No evidence, no recommendation. The rules and their
thresholds are documented in docs/loadgen.md ("Recommendations").
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]
Recommendation = dict[str, Any]

MIN_WINDOW_SAMPLES = 10
"""Windows with fewer successful streamed requests do not count as evidence of latency growth."""
KNEE_GROWTH = 1.5
"""TTFT p50 this many times its low-load level marks saturation."""
KNEE_MIN_SPAN = 2.0
"""The windows' rates must span at least this factor for a knee to be looked for."""
PLATEAU_SHARE = 0.9
"""A closed loop's throughput within this share of its level at the highest concurrency has plateaued."""
HEADROOM = 0.9
"""An objective measured at or above this share of its threshold has little headroom."""
RATE_LIMIT_SHARE = 0.5
"""Rate limiting (429) must make up at least this share of the failures ..."""
MIN_ERROR_SHARE = 0.01
"""... and of the requests (also the floor for timeouts)."""
LAG_P99_MS = 10.0
"""Schedule lag p99 beyond this means the generator fell behind its schedule ..."""
OMISSION_GROWTH = 1.1
"""... when it also makes a latency p99 from the intended send this much worse than from the actual send."""
AVAILABILITY_FLOOR = 0.99


def _rec(rule: str, severity: str, message: str, **evidence: Any) -> Recommendation:
    return {"rule": rule, "severity": severity, "message": message, "evidence": evidence}


def _windows_at(doc: Doc, indices: list[int]) -> str:
    wins = doc["windows"]
    spans = [f"{wins[i]['start_s']:g}–{wins[i]['end_s']:g} s" for i in indices[:4]]
    return ", ".join(spans) + (f" and {len(indices) - 4} more" if len(indices) > 4 else "")


def saturation_knee(doc: Doc) -> list[Recommendation]:
    """TTFT p50 per window against the rate achieved in it: a knee where TTFT grew 1.5× its
    low-load level, when the rates span at least 2× (a ramp, steps, a user ramp)."""
    points = [
        (float(w["achieved_rps"]), float(w["latency"]["ttft_ms"]["p50"]), float(w.get("concurrency") or 0.0))
        for w in doc["windows"]
        if (w["latency"]["ttft_ms"]["count"] or 0) >= MIN_WINDOW_SAMPLES and w["achieved_rps"] > 0
    ]
    if len(points) < 6:
        return []
    points.sort()
    low_rate, high_rate = points[0][0], points[-1][0]
    if high_rate < KNEE_MIN_SPAN * low_rate:
        return []
    low = points[: max(2, len(points) // 4)]
    base_ttft = statistics.median(p[1] for p in low)
    for i, (rps, ttft, conc) in enumerate(points):
        if rps <= low[-1][0] or ttft <= KNEE_GROWTH * base_ttft:
            continue
        above = [p for p in points[i:] if p[1] > KNEE_GROWTH * base_ttft]
        if len(above) * 3 < 2 * len(points[i:]):
            continue  # a blip, not a knee: most faster windows are not slow
        return [
            _rec(
                "saturation_knee",
                "warning",
                f"The target saturates near {rps:.3g} req/s: TTFT p50 grew from {base_ttft:.0f} ms at "
                f"≤ {low[-1][0]:.3g} req/s to {ttft:.0f} ms at {rps:.3g} req/s "
                f"({conc:.3g} requests in flight). Keep the expected peak below it or add capacity.",
                knee_rps=round(rps, 4),
                ttft_p50_at_knee_ms=round(ttft, 3),
                baseline_rps_up_to=round(low[-1][0], 4),
                baseline_ttft_p50_ms=round(base_ttft, 3),
                concurrency_at_knee=round(conc, 3),
                windows=len(points),
            )
        ]
    return []


def throughput_plateau(doc: Doc) -> list[Recommendation]:
    """Closed loops: throughput that stops growing with concurrency while TTFT keeps growing (the
    knee on the concurrency axis; by Little's law more users then only queue)."""
    if doc["summary"]["target_rps"] is not None:
        return []  # a rate curve: the rate axis (saturation_knee) applies
    points = [
        (float(w["concurrency"]), float(w["achieved_rps"]), float(w["latency"]["ttft_ms"]["p50"]))
        for w in doc["windows"]
        if (w["latency"]["ttft_ms"]["count"] or 0) >= MIN_WINDOW_SAMPLES and w["concurrency"] > 0
    ]
    if len(points) < 6:
        return []
    points.sort()
    if points[-1][0] < KNEE_MIN_SPAN * points[0][0]:
        return []
    top = points[-max(2, len(points) // 3) :]
    plateau = statistics.median(p[1] for p in top)
    first = next(p for p in points if p[1] >= PLATEAU_SHARE * plateau)
    if first[0] >= top[0][0]:
        return []  # throughput still grows up to the highest concurrency: no plateau yet
    top_conc = statistics.median(p[0] for p in top)
    top_ttft = statistics.median(p[2] for p in top)
    if top_ttft <= KNEE_GROWTH * first[2]:
        return []
    return [
        _rec(
            "throughput_plateau",
            "warning",
            f"Throughput saturates near {plateau:.3g} req/s, reached with {first[0]:.3g} requests in flight; "
            f"with {top_conc:.3g} in flight TTFT p50 is {top_ttft:.0f} ms instead of {first[2]:.0f} ms. "
            f"Beyond about {first[0]:.3g} concurrent requests more users only queue (Little's law): size "
            "client concurrency (or the target's capacity) for it.",
            plateau_rps=round(plateau, 4),
            concurrency_at_plateau=round(first[0], 3),
            ttft_p50_at_plateau_ms=round(first[2], 3),
            highest_concurrency=round(top_conc, 3),
            ttft_p50_at_highest_ms=round(top_ttft, 3),
            windows=len(points),
        )
    ]


def slo_at_risk(doc: Doc) -> list[Recommendation]:
    """Objectives that passed overall but failed in some windows, or passed with little headroom;
    and failures concentrated in a few windows."""
    out: list[Recommendation] = []
    for obj in doc["slo"]["objectives"]:
        failed, evaluated = obj["windows_failed"], obj["windows_evaluated"]
        value, threshold = obj["value"], obj["threshold"]
        if obj["passed"] is True and failed:
            out.append(
                _rec(
                    "slo_at_risk",
                    "warning",
                    f"SLO {obj['name']} passed over the run ({value:.4g}) but failed in {len(failed)} of "
                    f"{evaluated} windows ({_windows_at(doc, failed)}): a shorter burst like those would breach it.",
                    objective=obj["name"],
                    value=value,
                    threshold=threshold,
                    windows_failed=len(failed),
                    windows_evaluated=evaluated,
                    windows_failed_at_s=obj["windows_failed_at_s"],
                )
            )
        elif obj["passed"] is True and value is not None and threshold > 0 and value >= HEADROOM * threshold:
            out.append(
                _rec(
                    "slo_at_risk",
                    "info",
                    f"SLO {obj['name']} passed with little headroom: measured {value:.4g}, "
                    f"{100 * value / threshold:.0f} % of the threshold {threshold:g}.",
                    objective=obj["name"],
                    value=value,
                    threshold=threshold,
                    share_of_threshold=round(value / threshold, 4),
                )
            )
        elif obj["passed"] is False and evaluated >= 4 and 0 < len(failed) <= evaluated * 0.3:
            out.append(
                _rec(
                    "slo_failures_concentrated",
                    "warning",
                    f"SLO {obj['name']} failed, but only in {len(failed)} of {evaluated} windows "
                    f"({_windows_at(doc, failed)}): look at what happened then (a fault window, a spike).",
                    objective=obj["name"],
                    value=value,
                    threshold=threshold,
                    windows_failed=len(failed),
                    windows_evaluated=evaluated,
                    windows_failed_at_s=obj["windows_failed_at_s"],
                )
            )
    return out


def rate_limited(doc: Doc) -> list[Recommendation]:
    """429s (rate_limit, quota) dominating the failures: the client should back off."""
    s = doc["summary"]
    errors = s["errors_by_type"]
    limited = errors.get("rate_limit", 0) + errors.get("quota", 0)
    if not limited or limited < RATE_LIMIT_SHARE * s["failed"] or limited < MIN_ERROR_SHARE * s["requests"]:
        return []
    wins = doc["windows"]
    first = next(
        (w for w in wins if w["errors_by_type"].get("rate_limit") or w["errors_by_type"].get("quota")), None
    )
    clean = [w["achieved_rps"] for w in wins if not w["failed"] and w["requests"]]
    evidence: dict[str, Any] = {
        "rate_limited": limited,
        "failed": s["failed"],
        "requests": s["requests"],
        "first_window_at_s": None if first is None else first["start_s"],
        "rps_in_first_window": None if first is None else first["achieved_rps"],
        "highest_rps_without_errors": max(clean) if clean else None,
    }
    where = "" if first is None else f", from {first['start_s']:g} s at {first['achieved_rps']:.3g} req/s"
    limit = "" if not clean else f"; windows without errors reached {max(clean):.3g} req/s"
    return [
        _rec(
            "rate_limited",
            "warning",
            f"Rate limiting dominates the errors: {limited} of {s['failed']} failures "
            f"({100 * limited / s['requests']:.1f} % of requests) were 429s{where}{limit}. Retry with "
            "backoff that honours retry-after, and keep the client below the limit (rate or concurrency).",
            **evidence,
        )
    ]


def coordinated_omission(doc: Doc) -> list[Recommendation]:
    """Latency from the intended send much worse than from the actual send, with real schedule
    lag: the load generator (or its concurrency cap) was the bottleneck."""
    lag = doc["summary"]["schedule_lag_ms"]["p99"]
    if lag is None or lag <= LAG_P99_MS:
        return []
    worst: tuple[str, float, float] | None = None
    for metric in ("ttft_ms", "e2e_ms"):
        actual = doc["latency"][metric]["p99"]
        intended = doc["latency_from_intended_send"][metric]["p99"]
        if (
            actual
            and intended
            and intended > OMISSION_GROWTH * actual
            and (worst is None or intended / actual > worst[2] / worst[1])
        ):
            worst = (metric, actual, intended)
    if worst is None:
        return []
    metric, actual, intended = worst
    cap = doc["scenario"].get("maxConcurrency")
    peak = doc["summary"].get("concurrency", {}).get("max_window")
    capped = cap is not None and peak is not None and peak >= 0.9 * cap
    advice = (
        f"raise maxConcurrency ({cap}: in-flight requests reached {peak:.3g} in a window)"
        if capped
        else "run more workers (parallelism) or give the generator its own core"
    )
    return [
        _rec(
            "coordinated_omission",
            "warning",
            f"The load generator fell behind its schedule (lag p99 {lag:.3g} ms): {metric} p99 is "
            f"{intended:.4g} ms from the intended send but {actual:.4g} ms from the actual send, so the "
            f"target was offered less load than planned. To measure the target, {advice}.",
            schedule_lag_p99_ms=lag,
            metric=metric,
            p99_from_actual_send_ms=actual,
            p99_from_intended_send_ms=intended,
            max_concurrency=cap,
            peak_window_concurrency=peak,
        )
    ]


def timeouts(doc: Doc) -> list[Recommendation]:
    s = doc["summary"]
    n = s["errors_by_type"].get("timeout", 0)
    if not n or n < MIN_ERROR_SHARE * s["requests"]:
        return []
    limit = doc["scenario"].get("requestTimeoutS")
    return [
        _rec(
            "timeouts",
            "warning",
            f"{n} requests ({100 * n / s['requests']:.1f} %) got no complete answer within requestTimeoutS "
            f"{limit:g} s (E2E p99 of the others: {doc['latency']['e2e_ms']['p99']} ms). If the target is "
            "just slow, raise the timeout; otherwise it hangs under this load.",
            timeouts=n,
            requests=s["requests"],
            request_timeout_s=limit,
            e2e_p99_ms=doc["latency"]["e2e_ms"]["p99"],
        )
    ]


def low_availability(doc: Doc) -> list[Recommendation]:
    s = doc["summary"]
    value = s.get("availability")
    if value is None or value >= AVAILABILITY_FLOOR:
        return []
    from llmsim.loadgen.report_sections import TARGET_SIDE_ERRORS

    by_type = {k: v for k, v in s["errors_by_type"].items() if k in TARGET_SIDE_ERRORS}
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1]))
    return [
        _rec(
            "low_availability",
            "warning",
            f"Availability {100 * value:.2f} % is below {100 * AVAILABILITY_FLOOR:g} %: the target or the "
            f"network failed {sum(by_type.values())} of {s['requests']} requests ({kinds}).",
            availability=value,
            requests=s["requests"],
            target_side_errors=by_type,
        )
    ]


def workflow_failures(doc: Doc) -> list[Recommendation]:
    out: list[Recommendation] = []
    for wid, wf in doc.get("workflows", {}).items():
        if not wf["failed"]:
            continue
        worst = max(wf["turns"], key=lambda t: t["failed"])
        kinds = ", ".join(f"{k} {v}" for k, v in wf["failures"].items())
        hint = (
            " The model kept calling tools past maxToolRounds: check the profile's tool rules."
            if "tool_loop" in wf["failures"]
            else ""
        )
        out.append(
            _rec(
                "workflow_failures",
                "warning",
                f"Workflow {wid}: {wf['failed']} of {wf['failed'] + wf['succeeded']} conversations failed "
                f"({kinds}), most at turn {worst['turn']} ({worst['failed']}).{hint}",
                workflow=wid,
                failed=wf["failed"],
                succeeded=wf["succeeded"],
                failures=wf["failures"],
                worst_turn=worst["turn"],
                failed_at_worst_turn=worst["failed"],
            )
        )
    return out


RULES: tuple[Callable[[Doc], list[Recommendation]], ...] = (
    saturation_knee,
    throughput_plateau,
    slo_at_risk,
    rate_limited,
    coordinated_omission,
    timeouts,
    low_availability,
    workflow_failures,
)


def derive(doc: Doc) -> list[Recommendation]:
    """Every rule's recommendations, in rule order."""
    return [rec for rule in RULES for rec in rule(doc)]
