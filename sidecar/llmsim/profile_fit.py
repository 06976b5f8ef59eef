"""Fit a SimulationProfile to measured traffic: `llmsim profile fit`.

Inputs are the JSON lines `llmsim proxy --record FILE` writes for forwarded (passthrough/perturb)
requests, or a `llmsim load` report.json. The result uses `empirical` distributions through the
observed percentiles, so sampling the profile reproduces them (see `simulation.sampling`).
The fitting is pure; only `load_inputs` reads files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmsim.api.distributions import Constant, Empirical
from llmsim.api.profile import SimulationProfileSpec
from llmsim.errors import LLMSimError

QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
"""Percentiles a fit may use; the tails need enough samples (`MIN_TAIL_SAMPLES` beyond them)."""
MIN_TAIL_SAMPLES = 5
"""A quantile q is used only when at least this many samples lie beyond it (n * min(q, 1-q))."""
MIN_LATENCY_MS = 0.01
"""Floor of fitted latency values (empirical percentiles must be > 0; batched events measure 0)."""


@dataclass
class Observations:
    """Measured samples, in milliseconds and tokens (the recorded output-carrying events: tokens,
    except Gemini's chunks of several)."""

    ttft_ms: list[float] = field(default_factory=list)
    itl_ms: list[float] = field(default_factory=list)
    output_tokens: list[float] = field(default_factory=list)

    def add_record(self, record: Mapping[str, Any]) -> None:
        """One JSON line of `llmsim proxy --record` (`ttftMs`, `itlMs`, `outputChunks`)."""
        if "ttftMs" in record:
            self.ttft_ms.append(float(record["ttftMs"]))
        self.itl_ms.extend(float(x) for x in record.get("itlMs") or [])
        if record.get("stream") and "outputChunks" in record:
            self.output_tokens.append(float(record["outputChunks"]))


def _key(q: float) -> str:
    return f"p{q * 100:.10g}"


def usable_quantiles(n: int) -> list[float]:
    """The quantiles that `n` samples support (always at least p50 and one more when n >= 2)."""
    chosen = [q for q in QUANTILES if n * min(q, 1 - q) >= MIN_TAIL_SAMPLES]
    if len(chosen) < 2 and n >= 2:
        chosen = [0.25, 0.5, 0.75] if n >= 4 else [0.5, 0.9]
    return chosen


def fit_empirical(samples: Sequence[float], floor: float = MIN_LATENCY_MS) -> Empirical:
    """An `empirical` distribution through the samples' percentiles. ValueError on < 2 samples."""
    values = np.asarray([s for s in samples if math.isfinite(s)], dtype=float)
    if values.size < 2:
        raise ValueError(f"need at least 2 samples to fit a distribution, got {values.size}")
    qs = usable_quantiles(int(values.size))
    points = np.maximum(np.quantile(values, qs, method="linear"), floor)
    points = np.maximum.accumulate(points)
    percentiles = {_key(q): round(float(v), 4) for q, v in zip(qs, points, strict=True)}
    return Empirical(percentiles=percentiles, min=floor)


def fit_observations(obs: Observations, base: SimulationProfileSpec | None = None) -> SimulationProfileSpec:
    """A profile whose TTFT, ITL and output-token distributions reproduce the observations."""
    base = base or SimulationProfileSpec()
    latency: dict[str, Any] = {}
    problems: list[str] = []
    for name, samples, floor in (
        ("ttft_ms", obs.ttft_ms, MIN_LATENCY_MS),
        ("itl_ms", obs.itl_ms, MIN_LATENCY_MS),
        ("output_tokens", obs.output_tokens, 1.0),
    ):
        try:
            latency[name] = fit_empirical(samples, floor)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if "ttft_ms" not in latency:
        raise LLMSimError("cannot fit a profile: " + "; ".join(problems))
    return base.model_copy(update={"latency": base.latency.model_copy(update=latency)})


def fit_report(report: Mapping[str, Any], base: SimulationProfileSpec | None = None) -> SimulationProfileSpec:
    """A profile from a `llmsim load` report.json: its latency histograms (or percentile summary)."""
    from llmsim.loadgen.histogram import LogHistogram

    base = base or SimulationProfileSpec()
    latency: dict[str, Any] = {}
    hists = (report.get("histograms") or {}).get("latency") or {}
    summary = report.get("latency") or {}
    for name in ("ttft_ms", "itl_ms"):
        percentiles: dict[str, float] = {}
        if name in hists:
            hist = LogHistogram.from_dict(hists[name])
            for q in usable_quantiles(hist.count):
                value = hist.quantile(q)
                if value is not None:
                    percentiles[_key(q)] = value
        elif isinstance(summary.get(name), Mapping):
            percentiles = {
                k: float(v)
                for k, v in summary[name].items()
                if k.startswith("p") and isinstance(v, int | float)
            }
        if len(percentiles) >= 2:
            latency[name] = _monotone(percentiles)
    if "ttft_ms" not in latency:
        raise LLMSimError("cannot fit a profile: the report has no TTFT percentiles (latency.ttft_ms)")
    run = report.get("summary") or {}
    if run.get("succeeded") and run.get("output_tokens"):
        latency["output_tokens"] = Constant(value=round(run["output_tokens"] / run["succeeded"], 2))
    return base.model_copy(update={"latency": base.latency.model_copy(update=latency)})


def _monotone(percentiles: Mapping[str, float]) -> Empirical:
    from llmsim.api.distributions import parse_percentile

    ordered = sorted(percentiles.items(), key=lambda kv: parse_percentile(kv[0]))
    out: dict[str, float] = {}
    floor = MIN_LATENCY_MS
    for key, value in ordered:
        floor = max(floor, float(value))
        out[key] = round(floor, 4)
    return Empirical(percentiles=out, min=MIN_LATENCY_MS)


def load_inputs(paths: Iterable[Path]) -> tuple[Observations, list[dict[str, Any]]]:
    """Read JSONL observation files and report.json files (told apart by content)."""
    obs = Observations()
    reports: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LLMSimError(f"{path}: cannot read: {exc.strerror or exc}") from None
        stripped = text.lstrip()
        if stripped.startswith("{") and '"schema_version"' in text[:2000] and "\n{" not in stripped.rstrip():
            reports.append(json.loads(text))
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LLMSimError(f"{path}:{number}: not a JSON line: {exc.msg}") from None
            if isinstance(record, dict) and "schema_version" in record:
                reports.append(record)
            elif isinstance(record, dict):
                obs.add_record(record)
    return obs, reports
